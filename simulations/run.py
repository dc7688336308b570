"""One simulation: load the scenario and traces, run every policy, write the results."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wattwise.models.scenario import load_scenario
from wattwise.simulations.cluster_model import build_cluster_model
from wattwise.simulations.engine import run_policy
from wattwise.simulations.inputs import SimInputs, build_inputs
from wattwise.simulations.policies import make_policy
from wattwise.simulations.recorder import Recorder
from wattwise.simulations.timing import ControlTiming

log = logging.getLogger(__name__)


@dataclass
class SimResult:
    summary: dict
    recorders: dict[str, Recorder]
    inputs: SimInputs
    class_names: list[str]
    zones: list[str]
    run_time_s: dict[str, float]


def simulate(scenario_path, policies, *, demand_csv=None, demand_start=None, carbon_csv=None, start=None,
             days=None, step_s=None, seed=0, timing: ControlTiming | None = None, progress_factory=None,
             scenario=None, policy_factory=None) -> SimResult:
    timing = timing or ControlTiming()
    scenario = scenario or load_scenario(scenario_path)
    inputs = build_inputs(scenario, demand_csv=demand_csv, demand_start=demand_start, carbon_csv=carbon_csv,
                          start=start, days=days, step_s=step_s)
    cm = build_cluster_model(scenario.snapshot)
    recorders, summaries, times = {}, {}, {}
    for name in policies:
        policy = (policy_factory or make_policy)(name, scenario, timing)
        progress = progress_factory(name) if progress_factory else None
        t0 = time.perf_counter()
        rec = run_policy(policy, cm, inputs, timing, seed, progress)
        times[name] = time.perf_counter() - t0
        extra = {"node_wakes": rec.wakes}
        if hasattr(policy, "replans"):
            extra["planner_calls"] = policy.replans
        recorders[name] = rec
        summaries[name] = rec.summary(rec.scaling_events, extra)
        log.info("%s: %.1f s", name, times[name])
    summary = {
        "policies": summaries,
        "scenario": {"name": scenario.spec.name, "path": str(scenario.path), "objective": scenario.spec.objective,
                     "nodes": cm.n_nodes, "workloads": cm.n_workloads, "node_classes": cm.class_names,
                     "zones": list(inputs.zones)},
        "inputs": {**inputs.described, "seed": seed, "policies": list(policies),
                   "timing": {k: getattr(timing, k) for k in timing.__dataclass_fields__},
                   "run_time_s": {k: round(v, 2) for k, v in times.items()}},
    }
    return SimResult(summary, recorders, inputs, cm.class_names, list(inputs.zones), times)


def write_summary(result: SimResult, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "summary.json"
    path.write_text(json.dumps(result.summary, indent=2, default=_json_default) + "\n")
    return path


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    raise TypeError(f"not JSON serialisable: {type(value)}")
