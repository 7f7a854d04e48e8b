#!/usr/bin/env python3
"""Summarizes a campaign's runs.jsonl files (any number): runs, faults by kind, violations by kind,
time to a leader after the heal (p50/p99/max), and each failing run's seed. Used by run.sh and for
docs/reliability.md."""
import json
import sys
from collections import Counter


def pct(v, q):
    return v[min(len(v) - 1, int(q * (len(v) - 1) + 0.5))]


runs = []
for path in sys.argv[1:]:
    with open(path) as f:
        runs += [json.loads(line) for line in f if line.strip()]
judged = [r for r in runs if not r["setup_error"]]
faults = Counter(l for r in judged for l in r["labels"])
viol = Counter(k for r in judged for k in r["violations"])
l3 = sorted(r["leader_after_heal_ms"] for r in judged if r["leader_after_heal_ms"] is not None)
by_members = Counter(r["etcd_members"] for r in judged)
print(f"runs: {len(runs)} ({len(judged)} judged, {len(runs) - len(judged)} could not start); "
      f"by global etcd members: {dict(sorted(by_members.items()))}")
print(f"passed: {sum(1 for r in judged if r['ok'])}, with violations: "
      f"{sum(1 for r in judged if r['violations'])}")
print(f"faults injected: {sum(faults.values())}")
for k, n in sorted(faults.items()):
    print(f"  {k}: {n}")
print("violations by kind: " + (", ".join(f"{k}={n}" for k, n in sorted(viol.items())) or "none"))
exits = Counter(e.split()[0] for r in judged for e in r.get("exits", []))
kinds = Counter({"a": "app", "s": "sidecar", "r": "controller"}.get(n[2], "app") for n in exits.elements())
print("processes that exited on their own (no fault stopped them): " +
      (", ".join(f"{k}={n}" for k, n in sorted(kinds.items())) or "none"))
if l3:
    print(f"time to a leader after the heal: p50 {pct(l3, .5)} ms, p99 {pct(l3, .99)} ms, "
          f"max {l3[-1]} ms (n={len(l3)})")
    gap = [v for v in l3 if v > 0]
    if gap:
        print(f"  runs with no leader at the heal: {len(gap)}; their time to a leader: "
              f"p50 {pct(gap, .5)} ms, p99 {pct(gap, .99)} ms, max {gap[-1]} ms")
for r in runs:
    if r["setup_error"]:
        print(f"COULD NOT START seed {r['seed']}: {r['setup_error'][:200]}")
    for k, msg in r["violations"].items():
        print(f"FAILED seed {r['seed']} etcd {r['etcd_members']} {k}: {msg} | faults: "
              f"{'; '.join(r['faults'])} | logs {r['dir']}")
