#!/usr/bin/env python3
"""Judge an Autobahn TestSuite fuzzingclient report (scripts/autobahn.sh runs this).

usage: summary.py --report DIR --agent NAME [--expected FILE] [--problem TEXT]...

Reads DIR/index.json, which maps agent -> case id -> {behavior, behaviorClose,
...}. A case passes when its behavior is OK, NON-STRICT or INFORMATIONAL *and*
its behaviorClose is OK or INFORMATIONAL: a server that answers every message
right but botches the closing handshake fails. Every case id listed in FILE
(one a line: the cases the spec selected) that has no result fails too.

Prints the count of each behavior and behaviorClose verdict, every failing case
with its verdicts, each --problem (e.g. a wstest timeout) as an error, and as
its last line `autobahn: N passed, M failed`.
Exit status: 0 when every case passed and there was no problem, 1 otherwise.
Python 3 standard library only.
"""
import argparse
import json
import os
import sys
from collections import Counter

BEHAVIOR_PASS = {"OK", "NON-STRICT", "INFORMATIONAL"}
CLOSE_PASS = {"OK", "INFORMATIONAL"}
NO_RESULT = "NO RESULT"


def case_order(case_id):
    """Sort key: 9.10.1 after 9.2.1."""
    return [int(part) if part.isdigit() else 0 for part in case_id.split(".")]


def load_results(report, agent):
    path = os.path.join(report, "index.json")
    try:
        with open(path) as f:
            index = json.load(f)
    except FileNotFoundError:
        return {}, "no report at %s (wstest ended before writing it)" % path
    except (OSError, ValueError) as e:
        return {}, "cannot read %s: %s" % (path, e)
    if agent not in index:
        return {}, "%s has no results for agent '%s' (agents: %s)" % (
            path, agent, ", ".join(sorted(index)) or "none")
    return index[agent], None


def verdict_counts(label, counter):
    parts = ["%s %d" % (name, n) for name, n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))]
    return "autobahn: %-14s %s" % (label, ", ".join(parts) if parts else "-")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--report", required=True, help="report directory holding index.json")
    ap.add_argument("--agent", required=True, help="the agent name in the spec")
    ap.add_argument("--expected", help="file of the case ids the run should have results for")
    ap.add_argument("--problem", action="append", default=[],
                    help="a problem of the run to report; makes the exit status 1")
    args = ap.parse_args()

    results, load_error = load_results(args.report, args.agent)
    problems = list(args.problem)
    if load_error:
        problems.append(load_error)

    expected = set(results)
    if args.expected:
        with open(args.expected) as f:
            expected |= {line.strip() for line in f if line.strip()}
    if not expected:
        problems.append("no cases to judge")

    behavior, close, failing = Counter(), Counter(), []
    for case_id in sorted(expected, key=case_order):
        result = results.get(case_id)
        if result is None:
            b = c = NO_RESULT
        else:
            b = result.get("behavior", "?")
            c = result.get("behaviorClose", "?")
            behavior[b] += 1
            close[c] += 1
        if b not in BEHAVIOR_PASS or c not in CLOSE_PASS:
            failing.append((case_id, b, c, (result or {}).get("remoteCloseCode")))

    print("autobahn: %d cases, %d with results (agent '%s')" % (len(expected), len(results), args.agent))
    print(verdict_counts("behavior", behavior))
    print(verdict_counts("behaviorClose", close))
    missing = sum(1 for f in failing if f[1] == NO_RESULT)
    if missing:
        print("autobahn: %-14s %d cases (counted as failed)" % (NO_RESULT, missing))
    if failing:
        print("autobahn: failing cases (behavior / behaviorClose / server's close code):")
        for case_id, b, c, code in failing:
            print("  %-9s %-14s %-18s %s" % (case_id, b, c, "-" if code is None else code))
    for problem in problems:
        print("autobahn: ERROR: %s" % problem)
    if results:
        print("autobahn: HTML report: %s" % os.path.join(os.path.abspath(args.report), "index.html"))
    print("autobahn: %d passed, %d failed" % (len(expected) - len(failing), len(failing)))
    return 1 if failing or problems else 0


if __name__ == "__main__":
    sys.exit(main())
