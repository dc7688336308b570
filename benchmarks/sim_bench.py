"""Simulator speed: run time against nodes and steps, per policy (medians of --repeat runs),
one policy at a time in this process (one core), with the planner calls each run made.

Large scenarios are the bundled one scaled: every node group's count multiplied to reach the
wanted node total, and the workloads copied (with their demand profiles) to reach the wanted
workload count. Usage, from the repository root:

    .venv/bin/python benchmarks/sim_bench.py [--nodes 100,1000] [--days 1,7] [--workloads 50]
        [--policies default,peaks,wattwise,oracle] [--step-s 15] [--repeat 1]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
BUNDLED = REPO / "scenarios" / "metro-retail.yaml"


def scaled_scenario(nodes: int, workloads: int, folder: Path) -> Path:
    spec = yaml.safe_load(BUNDLED.read_text())
    base_total = sum(g["count"] for g in spec["nodes"])
    factor = nodes / base_total
    groups = spec["nodes"]
    for g in groups:
        g["count"] = max(1, int(round(g["count"] * factor)))
        g.pop("powered_on", None)
    groups[0]["count"] += nodes - sum(g["count"] for g in groups)
    base_w = spec["workloads"]
    out = []
    for i in range(workloads):
        w = copy.deepcopy(base_w[i % len(base_w)])
        if i >= len(base_w):
            w["name"] = f"{w['name']}-{i // len(base_w)}"
        scale = factor / max(1, workloads / len(base_w))
        prof = w.get("demand_profile")
        if prof:
            prof["peak_streams"] = max(1.0, prof["peak_streams"] * scale)
            prof["floor_streams"] = min(prof.get("floor_streams", 0) * scale, prof["peak_streams"])
            prof["phase_h"] = prof.get("phase_h", 0) + (i // len(base_w)) % 24
        w["max_replicas"] = max(w.get("max_replicas", 1000), int(w.get("max_replicas", 1000) * scale))
        out.append(w)
    spec["workloads"] = out
    for key in ("power_curves",):
        spec[key] = str((BUNDLED.parent / spec[key]).resolve())
    for z in spec["zones"].values():
        if z.get("carbon_trace"):
            z["carbon_trace"] = str((BUNDLED.parent / z["carbon_trace"]).resolve())
    spec["simulation"]["demand_trace"] = str((BUNDLED.parent / spec["simulation"]["demand_trace"]).resolve())
    path = folder / f"bench-{nodes}n-{workloads}w.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def main(argv=None) -> int:
    from wattwise.simulations.run import simulate

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nodes", default="100,1000")
    p.add_argument("--days", default="1,7")
    p.add_argument("--workloads", type=int, default=50)
    p.add_argument("--policies", default="default,peaks,wattwise,oracle")
    p.add_argument("--step-s", type=float, default=15.0)
    p.add_argument("--repeat", type=int, default=1)
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for nodes in [int(x) for x in args.nodes.split(",")]:
            path = scaled_scenario(nodes, args.workloads, Path(tmp))
            for days in [float(x) for x in args.days.split(",")]:
                for policy in args.policies.split(","):
                    times = []
                    for _ in range(args.repeat):
                        t0 = time.perf_counter()
                        result = simulate(path, [policy], days=days, step_s=args.step_s, seed=0, workers=1)
                        times.append(time.perf_counter() - t0)
                    med = statistics.median(times)
                    steps = int(days * 86400 / args.step_s)
                    calls = result.summary["policies"][policy].get("planner_calls", 0)
                    rows.append((nodes, days, policy, med, med / steps * 1e6))
                    print(f"nodes={nodes:5d} workloads={args.workloads} days={days:g} steps={steps:6d} "
                          f"policy={policy:18s} {med:8.2f} s  ({med / steps * 1e6:7.1f} us/step, "
                          f"{calls} planner calls, median of {args.repeat})", flush=True)
    print("\ngrowth (median run time ratio):")
    by = {(n, d, pol): t for n, d, pol, t, _ in rows}
    ns = sorted({r[0] for r in rows})
    ds = sorted({r[1] for r in rows})
    for pol in args.policies.split(","):
        if len(ns) > 1:
            r = [by[(ns[-1], d, pol)] / by[(ns[0], d, pol)] for d in ds]
            print(f"  {pol}: x{ns[-1] // ns[0]} nodes -> x{statistics.median(r):.1f} time")
        if len(ds) > 1:
            r = [by[(n, ds[-1], pol)] / by[(n, ds[0], pol)] for n in ns]
            print(f"  {pol}: x{ds[-1] / ds[0]:g} steps -> x{statistics.median(r):.1f} time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
