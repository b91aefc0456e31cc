#!/usr/bin/env python3
"""Write the first C code block under a README heading to a file, so the
build compiles the README's example as a user would copy it.

    readme_example.py README.md "## A complete echo bot" out.c

Fails (and so fails the build) if the heading or its C block is missing.
"""
import sys


def main():
    readme, heading, out = sys.argv[1:4]
    lines = open(readme, encoding="utf-8").read().split("\n")
    try:
        start = lines.index(heading)
    except ValueError:
        sys.exit(f"{readme}: no heading {heading!r}")
    block = None
    for i in range(start + 1, len(lines)):
        if lines[i].startswith("## "):
            break
        if lines[i].strip() == "```c":
            end = lines.index("```", i + 1)
            block = lines[i + 1:end]
            break
    if not block:
        sys.exit(f"{readme}: no C block under {heading!r}")
    with open(out, "w", encoding="utf-8") as f:
        f.write(f"/* Generated from {heading!r} in README.md: do not edit. */\n")
        f.write("\n".join(block) + "\n")


if __name__ == "__main__":
    main()
