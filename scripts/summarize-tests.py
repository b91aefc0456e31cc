"""Counts test cases in meson's testlog.json and prints "N passed, N failed".

A TAP test (every Check suite) counts each "ok"/"not ok" line as one case;
a test that printed no TAP counts as one case by its exit status. A TAP test
that crashed or timed out counts one more failure on top of its cases, so a
crash can never look like a pass.
"""
import json
import re
import sys

passed = failed = 0
failures = []
with open(sys.argv[1], encoding="utf-8") as log:
    for line in log:
        test = json.loads(line)
        out = test.get("stdout") or ""
        oks = len(re.findall(r"^ok\b", out, re.M))
        not_oks = len(re.findall(r"^not ok\b", out, re.M))
        good = test.get("result") in ("OK", "EXPECTEDFAIL", "SKIP")
        if oks + not_oks == 0:
            if good:
                passed += 1
            else:
                failed += 1
                failures.append(test["name"])
            continue
        passed += oks
        failed += not_oks
        if not_oks:
            failures.append(test["name"])
        if not good and not not_oks:
            failed += 1
            failures.append(f'{test["name"]} ({test.get("result")})')

if failures:
    print("failed:", ", ".join(failures))
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
