#!/usr/bin/env python3
"""Fails when the README's sample output of the main job no longer matches what it prints.

usage: readme_sample.py README.md OUTPUT.txt

The sample is the indented block after "It prints" in the README. Every line must match the
output exactly, except the closing line's elapsed time and rate, which vary from run to run.
"""
import re
import sys


def sample(readme: str) -> list[str]:
    lines = readme.splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("It prints"))
    block = []
    for line in lines[start + 1:]:
        if line.startswith("    ") or line == "":
            block.append(line[4:])
        elif block:
            break
    while block and block[0] == "":
        block.pop(0)
    while block and block[-1] == "":
        block.pop()
    return block


def normalize(line: str) -> str:
    return re.sub(r"\([0-9.]+ s, [0-9]+ events/s\)", "(TIME)", line.rstrip())


def main() -> int:
    readme_path, output_path = sys.argv[1], sys.argv[2]
    want = [normalize(l) for l in sample(open(readme_path).read())]
    got = [normalize(l) for l in open(output_path).read().splitlines() if l.strip() or True]
    while got and got[-1] == "":
        got.pop()
    if want != got:
        print("README sample output does not match the main job's output:")
        print("--- README")
        print("\n".join(want))
        print("--- raft-sim")
        print("\n".join(got))
        return 1
    print("README sample output matches the main job's output")
    return 0


if __name__ == "__main__":
    sys.exit(main())
