#!/usr/bin/env python3
"""The facts the docs repeat, checked against the code (TAP):
  1. every default in lib/util/defaults.h is the one the option's comment
     in include/xmppuv/client.h gives ([N]) and the one the README's
     options table gives;
  2. every error code in include/xmppuv/common.h is in the README's error
     table, and the table names no code that does not exist.
  docs_check.py SOURCE_ROOT"""
import re
import sys

root = sys.argv[1]
read = lambda p: open(f"{root}/{p}", encoding="utf-8").read()
defaults_h, client_h = read("lib/util/defaults.h"), read("include/xmppuv/client.h")
common_h, readme = read("include/xmppuv/common.h"), read("README.md")
problems = []


def number(text):
    """'1 MiB', '(1024u * 1024u)', '30000u', '1' -> an int; None otherwise."""
    t = text.strip().strip("()")
    m = re.fullmatch(r"(\d+) MiB", t)
    if m:
        return int(m.group(1)) << 20
    m = re.fullmatch(r"(\d+)u? \* (\d+)u?", t)
    if m:
        return int(m.group(1)) * int(m.group(2))
    m = re.fullmatch(r"(\d+)u?", t)
    if m:
        return int(m.group(1))
    m = re.fullmatch(r"`?(XMPPUV_[A-Z_]+)`?", t)  # an enum value, by name
    return m.group(1) if m else None


# 1. defaults
code = {m.group(1).lower(): number(m.group(2))
        for m in re.finditer(r"#define XMPPUV__DEFAULT_([A-Z0-9_]+) (.+)", defaults_h)}
options = client_h[client_h.index("typedef struct xmppuv_client_options"):]
options = options[:options.index("} xmppuv_client_options_t;")]
header = {}
for m in re.finditer(r"\b([a-z0-9_]+);[ \t]*/\*(.*?)\*/", options, re.S):
    d = re.search(r"\[([^\]=]+?)(?: =[^\]]*)?\]", m.group(2))
    if d:
        header[m.group(1)] = number(d.group(1))
# A comment above the field (one that is not after another field).
for m in re.finditer(r"/\*((?:(?!\*/).)*)\*/\s*\n\s*[a-z_]+[ *]+([a-z0-9_]+);", options, re.S):
    d = re.search(r"\[([^\]=]+?)(?: =[^\]]*)?\]", m.group(1))
    if d and m.group(2) not in header:
        header[m.group(2)] = number(d.group(1))
table = {}
section = readme[readme.index("## Options and defaults"):readme.index("## How the server is found")]
for row in re.finditer(r"^\| (`[^|]+`) \| ([^|]+) \|", section, re.M):
    names = re.findall(r"`([a-z0-9_]+)`", row.group(1))
    values = [v.strip() for v in row.group(2).split(",")]
    if len(values) == len(names):
        for n, v in zip(names, values):
            table[n] = number(v)
for name, value in sorted(code.items()):
    if header.get(name) != value:
        problems.append(f"{name}: defaults.h {value}, client.h [{header.get(name)}]")
    if table.get(name) != value:
        problems.append(f"{name}: defaults.h {value}, README {table.get(name)}")
print("1..2")
print(("ok" if not problems else "not ok") +
      f" 1 - {len(code)} defaults agree in defaults.h, client.h and the README")
for p in problems:
    print(f"# {p}")
n_default_problems = len(problems)

# 2. error codes
codes = set(re.findall(r"XX\((E[A-Z0-9]+),", common_h))
errors = readme[readme.index("## Errors and logging"):]
errors = errors[:errors.index("\n\n", errors.index("| code | meaning |"))]
listed = set(re.findall(r"`XMPPUV_(E[A-Z0-9]+)`", errors))
for c in sorted(codes - listed):
    problems.append(f"XMPPUV_{c} is not in the README's error table")
for c in sorted(listed - codes):
    problems.append(f"the README's error table names XMPPUV_{c}, which does not exist")
ok = len(problems) == n_default_problems
print(("ok" if ok else "not ok") + f" 2 - the README's error table lists the {len(codes)} codes")
for p in problems[n_default_problems:]:
    print(f"# {p}")
sys.exit(0 if not problems else 1)
