"""Planner solve time and optimality gap on synthetic clusters.

    .venv/bin/python benchmarks/planner_bench.py [--runs N] [--sizes 1000x100,100x10]

For each size: wall time of plan(snapshot) (median and p95 over N seeds), and the gap between the
plan's objective and the proven lower bound it reports (the MILP's LP relaxation with the
rounding cuts of models/milp_cuts.py, or the MILP's dual bound where the MILP runs): the gap is
an upper bound on how far the plan is from optimal. Issue 2's target: p95 <= 200 ms at 1,000 nodes and 100
workloads, gap <= 1%. Machines here are shared: compare sizes within one run, quote medians.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

from wattwise.models.planner import plan
from wattwise.synthetic import synthetic_snapshot

SIZES = [(100, 10), (100, 100), (1000, 10), (1000, 100), (5000, 10), (5000, 100)]


def percentile(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--milp-at-scale", action="store_true", help="also run the MILP on large problems")
    ap.add_argument("--sizes", help="comma-separated NODESxWORKLOADS, e.g. 1000x100 (default: all six)")
    args = ap.parse_args()
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")] if args.sizes else SIZES
    print(f"planner benchmark: {args.runs} seeds per size" + (", MILP at scale" if args.milp_at_scale else ""))
    print(f"{'nodes':>6} {'workloads':>9} {'median ms':>10} {'p95 ms':>8} {'gap median':>11} {'gap p95':>8}  solvers")
    for n_nodes, n_workloads in sizes:
        times, gaps, solvers = [], [], {}
        for seed in range(args.runs):
            snap = synthetic_snapshot(n_nodes, n_workloads, seed=seed)
            if args.milp_at_scale:
                snap = replace(snap, settings=replace(snap.settings, milp_at_scale=True))
            t0 = time.perf_counter()
            result, _ = plan(snap)
            times.append((time.perf_counter() - t0) * 1000)
            gaps.append(result.solver_gap)
            solvers[result.solver] = solvers.get(result.solver, 0) + 1
        print(f"{n_nodes:>6} {n_workloads:>9} {statistics.median(times):>10.1f} {percentile(times, 0.95):>8.1f} "
              f"{statistics.median(gaps):>10.2%} {percentile(gaps, 0.95):>8.2%}  "
              + ", ".join(f"{k} x{v}" for k, v in sorted(solvers.items())))


if __name__ == "__main__":
    main()
