"""Simulator speed against issue 16's figure: a week at 15 s steps with 1,000 nodes and 50
workloads in at most 60 s for the `wattwise` policy on one core.

Each run simulates `--days` (a part of a day is enough: the time grows with the steps) of one
policy in this process (`workers=1`, so one core) and prints the median of `--repeat` runs of
its step loop, in CPU seconds (a shared machine stretches wall-clock time, printed beside), as
seconds per simulated day, microseconds per step, the planner calls it made and the week it
projects to. `--scaling` adds the growth table: 250, 500 and 1,000 nodes at 15 s steps, and 15,
30 and 60 s steps at 1,000 nodes. `--profile FILE` runs the first case under cProfile, writes
the stats to FILE and prints where the time went.

Large scenarios are the bundled one scaled: every node group's count multiplied to reach the
wanted node total, and the workloads copied (with their demand profiles, phase-shifted) to reach
the wanted workload count. Usage, from the repository root:

    .venv/bin/python benchmarks/sim_bench.py [--nodes 1000] [--workloads 50] [--days 0.25]
        [--step-s 15] [--policies wattwise] [--repeat 1] [--scaling] [--profile FILE]

The machine is shared and has 2 cores: CPU time keeps other processes out of the figure, but they
still slow a run through the caches they share; compare figures from one run of this script.
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
BUNDLED = REPO / "scenarios" / "metro-retail.yaml"
WEEK_DAYS = 7.0
TARGET_S = 60.0
SCALING_NODES = (250, 500, 1000)
SCALING_STEPS_S = (15.0, 30.0, 60.0)


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


def measure(path: Path, policy: str, days: float, step_s: float, repeat: int, profile: str | None = None) -> dict:
    """Median time of the policy's run alone (the step loop, not the scenario loading), with what
    the run decided, for comparing runs. The time is this process's CPU time (on one core, since
    the run is one thread): other processes on a shared machine stretch the wall-clock time (the
    simulator's own `run_time_s`, also printed) but barely the CPU time."""
    from wattwise.simulations import run as run_module

    cpu: list[float] = []
    step_loop = run_module.run_policy

    def timed(*args, **kwargs):
        t0 = time.process_time()
        try:
            return step_loop(*args, **kwargs)
        finally:
            cpu.append(time.process_time() - t0)

    run_module.run_policy = timed
    walls = []
    try:
        for i in range(repeat):
            profiler = cProfile.Profile() if profile and i == 0 else None
            if profiler:
                profiler.enable()
            result = run_module.simulate(path, [policy], days=days, step_s=step_s, seed=0, workers=1)
            if profiler:
                profiler.disable()
                profiler.dump_stats(profile)
            walls.append(result.run_time_s[policy])
    finally:
        run_module.run_policy = step_loop
    s = result.summary["policies"][policy]
    run_s = statistics.median(cpu)
    steps = int(round(days * 86400 / step_s))
    return {"run_s": run_s, "wall_s": statistics.median(walls), "s_per_day": run_s / days,
            "us_per_step": run_s / max(steps, 1) * 1e6, "steps": steps, "week_s": run_s / days * WEEK_DAYS,
            "planner_calls": s.get("planner_calls", 0), "energy_kwh": s["energy_kwh"], "sla": s["sla_attainment"]}


def _line(nodes: int, workloads: int, step_s: float, days: float, policy: str, m: dict, repeat: int) -> str:
    return (f"nodes={nodes:5d} workloads={workloads} step={step_s:g}s days={days:g} steps={m['steps']:6d} "
            f"policy={policy:10s} {m['run_s']:8.2f} CPU s ({m['wall_s']:.1f} s wall) = {m['s_per_day']:7.1f} s per simulated day "
            f"({m['us_per_step']:7.0f} us/step, {m['planner_calls']} planner calls, median of {repeat}; "
            f"energy {m['energy_kwh']:.3f} kWh, SLA {m['sla']:.5f})")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nodes", default="1000", help="comma-separated node counts (default 1000)")
    p.add_argument("--workloads", type=int, default=50)
    p.add_argument("--days", type=float, default=0.25, help="simulated days per run (default 0.25)")
    p.add_argument("--step-s", default="15", help="comma-separated step lengths in seconds (default 15)")
    p.add_argument("--policies", default="wattwise")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--scaling", action="store_true",
                   help="also nodes 250,500,1000 at 15 s steps and steps 15,30,60 s at 1,000 nodes")
    p.add_argument("--profile", metavar="FILE", help="cProfile the first case into FILE and print its top entries")
    args = p.parse_args(argv)
    if args.days <= 0 or args.repeat < 1 or args.workloads < 1:
        p.error("--days, --repeat and --workloads must be positive")
    nodes_list = [int(x) for x in args.nodes.split(",")]
    steps_list = [float(x) for x in args.step_s.split(",")]
    cases = [(n, s) for n in nodes_list for s in steps_list]
    if args.scaling:
        cases += [(n, SCALING_STEPS_S[0]) for n in SCALING_NODES] + [(max(SCALING_NODES), s) for s in SCALING_STEPS_S]
    cases = list(dict.fromkeys(cases))
    results: dict[tuple, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        paths: dict[int, Path] = {}
        for i, (nodes, step_s) in enumerate(cases):
            if nodes not in paths:
                paths[nodes] = scaled_scenario(nodes, args.workloads, Path(tmp))
            for policy in args.policies.split(","):
                profile = args.profile if i == 0 and policy == args.policies.split(",")[0] else None
                m = measure(paths[nodes], policy, args.days, step_s, args.repeat, profile)
                results[(nodes, step_s, policy)] = m
                print(_line(nodes, args.workloads, step_s, args.days, policy, m, args.repeat), flush=True)
                if profile:
                    print(f"\nprofile ({profile}), by cumulative time:")
                    pstats.Stats(profile, stream=sys.stdout).sort_stats("cumulative").print_stats(30)
    for policy in args.policies.split(","):
        for (nodes, step_s, pol), m in results.items():
            if pol == policy and (nodes, step_s) == (1000, 15.0):
                verdict = "meets" if m["week_s"] <= TARGET_S else "misses"
                print(f"\n{policy}: a week at 15 s steps, 1,000 nodes, {args.workloads} workloads projects to "
                      f"{m['week_s']:.0f} s ({verdict} the {TARGET_S:.0f} s target)")
        if args.scaling:
            _scaling_table(results, policy)
    return 0


def _scaling_table(results: dict, policy: str) -> None:
    """How the time per simulated day grows with nodes (15 s steps) and with steps (1,000 nodes)."""
    print(f"\n{policy}: seconds per simulated day")
    base = results.get((SCALING_NODES[0], SCALING_STEPS_S[0], policy))
    print("  nodes  (15 s steps)   s/day   x vs 250 nodes")
    for n in SCALING_NODES:
        m = results[(n, SCALING_STEPS_S[0], policy)]
        print(f"  {n:5d}                {m['s_per_day']:7.1f}   x{m['s_per_day'] / base['s_per_day']:.2f}")
    top = max(SCALING_NODES)
    slow = results[(top, SCALING_STEPS_S[-1], policy)]
    print(f"  step   ({top} nodes)  steps/day  s/day   x vs {SCALING_STEPS_S[-1]:g} s steps")
    for s in SCALING_STEPS_S:
        m = results[(top, s, policy)]
        print(f"  {s:4g} s              {86400 / s:6.0f}  {m['s_per_day']:7.1f}   x{m['s_per_day'] / slow['s_per_day']:.2f}")


if __name__ == "__main__":
    sys.exit(main())
