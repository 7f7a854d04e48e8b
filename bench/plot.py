#!/usr/bin/env python3
"""Plots failover latency distributions (mcl vs the client-go baseline) from JSON lines, and prints a
Markdown table of p50/p90/p99/max per (system, scenario).

usage: plot.py RESULTS.jsonl OUT_DIR
Writes OUT_DIR/failover.png (one panel per scenario, log-scale latency, every sample as a dot over
a box) and prints the table to stdout.
"""
import collections
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


# The goals with TTL 2 s (p99), drawn as a dashed line on each panel.
# control-plane-loss is bounded from the old leader's LOST (its validity bound): TTL + 500 ms.
GOALS_MS = {"graceful": 100, "crash": 2000 + 250, "cluster-loss": 2000 + 500,
            "control-plane-loss after LOST": 2000 + 500}


def percentile(values, p):
    v = sorted(values)
    if not v:
        return float("nan")
    k = (len(v) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def main():
    path, out_dir = sys.argv[1], sys.argv[2]
    data = collections.defaultdict(list)
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            r = json.loads(line)
            system = r["system"] + (f" ({r['timing']})" if r.get("timing") else "")
            data[(r["scenario"], system)].append(r["latency_ms"])
            if r.get("after_lost_ms", -1) >= 0:
                data[(r["scenario"] + " after LOST", system)].append(r["after_lost_ms"])

    print("| scenario | system | n | p50 ms | p90 ms | p99 ms | max ms |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for (scenario, system), v in sorted(data.items()):
        print(f"| {scenario} | {system} | {len(v)} | {percentile(v, 50):.1f} | "
              f"{percentile(v, 90):.1f} | {percentile(v, 99):.1f} | {max(v):.1f} |")

    scenarios = sorted({s for s, _ in data})
    fig, axes = plt.subplots(1, len(scenarios), figsize=(5 * len(scenarios), 5), squeeze=False)
    for ax, scenario in zip(axes[0], scenarios):
        systems = sorted(s for sc, s in data if sc == scenario)
        values = [data[(scenario, s)] for s in systems]
        ax.boxplot(values, vert=True, showfliers=False, widths=0.5)
        for i, v in enumerate(values, start=1):
            ax.scatter([i + (j % 7 - 3) * 0.03 for j in range(len(v))], v, s=8, alpha=0.5)
        ax.set_xticks(range(1, len(systems) + 1))
        ax.set_xticklabels([s.replace(" (", "\n(") for s in systems], fontsize=8)
        goal = GOALS_MS.get(scenario)
        if goal is not None:
            ax.axhline(goal, color="red", linestyle="--", linewidth=1)
            ax.text(0.55, goal, f" goal p99 \u2264 {goal} ms", color="red", fontsize=8,
                    va="bottom")
        ax.set_yscale("log")
        ax.set_ylabel("time to new leader (ms, log scale)")
        ax.set_title(f"{scenario} failover")
        ax.grid(True, which="both", axis="y", alpha=0.3)
    fig.suptitle("mcl vs client-go leaderelection (Lease): lower is better")
    fig.tight_layout()
    fig.savefig(f"{out_dir}/failover.png", dpi=110)


if __name__ == "__main__":
    main()
