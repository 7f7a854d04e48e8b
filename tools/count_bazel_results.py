#!/usr/bin/env python3
"""Counts test cases from a Bazel run: reads the build event stream (--build_event_json_file) for
every test target's outcome, and each target's JUnit XML (written by GoogleTest) for its cases.

A target that failed without a readable XML (crash, timeout, build failure) counts as one failed
case, so nothing that went wrong disappears from the totals. Prints "bazel: N passed, N failed" and
one line per failed target.
"""
import json
import os
import sys
import xml.etree.ElementTree as ET


def cases_from_xml(path):
    passed = failed = 0
    names = []
    root = ET.parse(path).getroot()
    for case in root.iter("testcase"):
        if case.get("status") == "notrun" or case.find("skipped") is not None:
            # Disabled/skipped tests are not passes; we have none, and would rather see them.
            failed += 1
            names.append(case.get("classname", "") + "." + case.get("name", "") + " (skipped)")
        elif case.find("failure") is not None or case.find("error") is not None:
            failed += 1
            names.append(case.get("classname", "") + "." + case.get("name", ""))
        else:
            passed += 1
    return passed, failed, names


def main():
    bep_path, testlogs = sys.argv[1], sys.argv[2]
    outcomes = {}
    with open(bep_path) as f:
        for line in f:
            ev = json.loads(line)
            ident = ev.get("id", {})
            if "testSummary" in ident:
                label = ident["testSummary"]["label"]
                outcomes[label] = ev.get("testSummary", {}).get("overallStatus", "FAILED")
            elif "targetCompleted" in ident and not ev.get("completed", {}).get("success", True):
                label = ident["targetCompleted"]["label"]
                outcomes.setdefault(label, "FAILED_TO_BUILD")
    total_pass = total_fail = 0
    for label, status in sorted(outcomes.items()):
        pkg, _, name = label.lstrip("/").partition(":")
        xml = os.path.join(testlogs, pkg, name, "test.xml")
        p = f = 0
        names = []
        if status != "FAILED_TO_BUILD" and os.path.exists(xml):
            try:
                p, f, names = cases_from_xml(xml)
            except ET.ParseError:
                p, f = 0, 0
        if status != "PASSED" and f == 0:
            f, names = 1, [f"{label} ({status})"]
        total_pass += p
        total_fail += f
        for n in names:
            print(f"FAILED: {label}: {n}")
    print(f"bazel: {total_pass} passed, {total_fail} failed")


if __name__ == "__main__":
    main()
