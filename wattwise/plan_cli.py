"""`wattwise plan [--scenario FILE|NAME] [--json]`: decide replicas and placement for a scenario."""

from __future__ import annotations

import json
import sys

from wattwise.models import BUNDLED_SCENARIO
from wattwise.models.planner import plan
from wattwise.models.scenario import load_scenario
from wattwise.quiet import stdout_silenced


def add_arguments(p) -> None:
    p.add_argument("--scenario", default=str(BUNDLED_SCENARIO),
                   help="scenario YAML, or a bundled scenario by name: eu-nearby, metro-retail (default: metro-retail)")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.add_argument("--objective", choices=("energy", "carbon", "balanced"), help="override the scenario's objective")


def run(args) -> int:
    scenario = load_scenario(args.scenario)
    snapshot = scenario.snapshot
    if args.objective:
        from dataclasses import replace

        from wattwise.models.snapshot import Objective

        snapshot = replace(snapshot, objective=Objective(args.objective, scenario.spec.carbon_weight))
    with stdout_silenced():  # HiGHS debug prints would corrupt --json
        result, _ = plan(snapshot)
    if args.json:
        json.dump(plan_json(result), sys.stdout, indent=2)
        print()
    else:
        print(render_text(scenario.spec.name, snapshot, result))
    return 0 if all(w.feasible for w in result.workloads.values()) else 3


def plan_json(result) -> dict:
    doc = result.to_dict()
    doc["placements"] = [
        {"workload": p.workload, "node": p.node, "node_class": p.node_class, "zone": p.zone, "replicas": p.replicas,
         "node_tee_kinds": list(p.node_tees), "workload_requires_tee": p.requirement}
        for p in result.placements]
    return doc


def render_text(name, snapshot, result) -> str:
    lines = [f"Plan for scenario {name!r} (objective: {result.objective})",
             f"  expected power {result.power_w:,.0f} W, carbon {result.carbon_g_per_h:,.0f} g/h; {result.reasons[0]}",
             f"  {result.reasons[1]}", ""]
    node_by_name = {n.name: n for n in snapshot.nodes}
    for key, wp in result.workloads.items():
        flag = "" if wp.feasible else "  ** SLA NOT MET **"
        waiting = f" (+{wp.unplaced_replicas} waiting for room)" if wp.unplaced_replicas else ""
        lines.append(f"{key}: {wp.replicas} replicas{waiting} for {wp.demand_fps:,.1f} fps, "
                     f"capacity {wp.capacity_fps:,.1f} fps, "
                     f"{wp.power_w:,.0f} W{flag}")
        for node, count in sorted(wp.by_node.items()):
            n = node_by_name[node]
            tees = ",".join(sorted(k.value for k in n.tee_ready)) or "none"
            lines.append(f"    {count:3d} x {node:<14} class {n.node_class:<12} zone {n.zone:<14} TEE {tees}")
        for r in wp.reasons:
            lines.append(f"    - {r}")
        if wp.ranking:
            lines.append(f"    ranking (best first): {', '.join(wp.ranking[:5])}{' ...' if len(wp.ranking) > 5 else ''}")
        lines.append("")
    lines.append(f"Active nodes: {', '.join(result.active_nodes) or 'none'}")
    lines.append(f"May idle:     {', '.join(result.idle_nodes) or 'none'}")
    return "\n".join(lines)
