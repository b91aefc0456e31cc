"""Counts test cases and prints "N passed, N failed".

Arguments: meson testlog.json files (one per build: plain, sanitizers), and
"NAME=PASSED/FAILED" for stages that are not meson tests (fuzzing, soak).

A TAP test (every Check suite) counts each "ok"/"not ok" line as one case;
a test that printed no TAP counts as one case by its exit status. A TAP test
that crashed or timed out counts one more failure on top of its cases, so a
crash can never look like a pass.

Each failed case's "not ok" line (file, line and assertion) is printed
before the count, so the end of a long CI log says what failed.
"""
import json
import re
import sys

passed = failed = 0
failures = []
details = []  # the "not ok" lines, where the end of the log shows them

for arg in sys.argv[1:]:
    m = re.fullmatch(r"([\w.-]+)=(\d+)/(\d+)", arg)
    if m:
        passed += int(m.group(2))
        failed += int(m.group(3))
        if int(m.group(3)):
            failures.append(m.group(1))
        continue
    label = "asan:" if "asan" in arg else ""
    try:
        log = open(arg, encoding="utf-8")
    except OSError:
        print(f"no test log at {arg}")
        failed += 1
        failures.append(arg)
        continue
    with log:
        for line in log:
            test = json.loads(line)
            name = label + test["name"]
            out = test.get("stdout") or ""
            oks = len(re.findall(r"^ok\b", out, re.M))
            not_oks = len(re.findall(r"^not ok\b", out, re.M))
            good = test.get("result") in ("OK", "EXPECTEDFAIL")
            if test.get("result") == "SKIP":
                continue
            if oks + not_oks == 0:
                if good:
                    passed += 1
                else:
                    failed += 1
                    failures.append(name)
                continue
            passed += oks
            failed += not_oks
            if not_oks:
                failures.append(name)
                for line in re.findall(r"^not ok\b.*$", out, re.M)[:10]:
                    details.append(f"{name}: {line[:400]}")
            if not good and not not_oks:
                failed += 1
                failures.append(f'{name} ({test.get("result")})')

for line in details:
    print(line)
if failures:
    print("failed:", ", ".join(failures))
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
