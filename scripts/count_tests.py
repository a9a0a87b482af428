#!/usr/bin/env python3
"""Counts test cases from the GoogleTest XML reports of the given targets.

Prints one line, alone: "N passed, M failed" (", K skipped" when any were).
A test target without a report (it did not build, or crashed before Bazel
could write one) counts as one failed case, so a broken build never reads
as a pass. With --raw it prints "passed failed skipped" instead, for
scripts/test to add several runs (plain, ASan, TSan) together.
"""
import os
import subprocess
import sys
import xml.etree.ElementTree as ET


def test_targets(patterns):
    query = " + ".join(f"tests({p})" for p in patterns)
    out = subprocess.run(["bazel", "query", query, "--output=label"],
                         capture_output=True, text=True, check=False)
    return [t for t in out.stdout.split() if t.startswith("//")]


def main():
    args = sys.argv[1:]
    raw = "--raw" in args
    patterns = [a for a in args if a != "--raw"] or ["//..."]
    passed = failed = skipped = 0
    for target in test_targets(patterns):
        package, name = target[2:].split(":")
        report = os.path.join("bazel-testlogs", package, name, "test.xml")
        try:
            root = ET.parse(report).getroot()
        except (OSError, ET.ParseError):
            print(f"no test report for {target}", file=sys.stderr)
            failed += 1
            continue
        for case in root.iter("testcase"):
            if case.find("failure") is not None or case.find("error") is not None:
                failed += 1
            elif case.find("skipped") is not None or case.get("status") == "notrun" \
                    or case.get("result") == "skipped":
                skipped += 1
            else:
                passed += 1
    if raw:  # for scripts/test, which adds several runs together
        print(passed, failed, skipped)
        return 0
    line = f"{passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    print(line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
