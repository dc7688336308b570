"""One simulation: load the scenario and traces, run every policy, write the results."""

from __future__ import annotations

import json
import logging
import multiprocessing
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from queue import Empty

import numpy as np

from wattwise.models.scenario import load_scenario
from wattwise.quiet import stdout_silenced
from wattwise.simulations.cluster_model import build_cluster_model
from wattwise.simulations.regional import RULE, has_origins, served_at_home
from wattwise.simulations.engine import run_policy
from wattwise.simulations.headline import headline
from wattwise.simulations.inputs import SimInputs, build_inputs
from wattwise.simulations.policies import PLANNING_POLICIES, make_policy
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
             scenario=None, policy_factory=None, workers: int = 1) -> SimResult:
    """Run each policy over the same inputs. `workers` > 1 runs policies in that many processes
    at once (each run is independent and seeded alike, so the result is the same)."""
    timing = timing or ControlTiming()
    scenario = scenario or load_scenario(scenario_path)
    inputs = build_inputs(scenario, demand_csv=demand_csv, demand_start=demand_start, carbon_csv=carbon_csv,
                          start=start, days=days, step_s=step_s)
    cm = build_cluster_model(scenario.snapshot, gpu_taint=True)   # GPU nodes tainted as GPU clouds do
    peers_cm = build_cluster_model(served_at_home(scenario.snapshot), gpu_taint=True) \
        if has_origins(scenario.snapshot) else cm
    job = _Job(scenario, cm, inputs, timing, seed, policy_factory or make_policy, peers_cm)
    if workers > 1 and len(policies) > 1:
        runs = _run_parallel(job, policies, workers, progress_factory)
    else:
        runs = {name: job(name, progress_factory(name) if progress_factory else None) for name in policies}
    recorders = {name: runs[name][0] for name in policies}
    summaries = {name: runs[name][1] for name in policies}
    times = {name: runs[name][2] for name in policies}
    summary = {
        "headline": headline(summaries),
        "policies": summaries,
        "scenario": {"name": scenario.spec.name, "path": str(scenario.path), "objective": scenario.spec.objective,
                     "nodes": cm.n_nodes, "workloads": cm.n_workloads, "node_classes": cm.class_names,
                     "zones": list(inputs.zones)},
        "inputs": {**inputs.described, "seed": seed, "policies": list(policies), "workers": workers,
                   "timing": asdict(timing),
                   "run_time_s": {k: round(v, 2) for k, v in times.items()}},
    }
    return SimResult(summary, recorders, inputs, cm.class_names, list(inputs.zones), times)


@dataclass
class _Job:
    """One policy's run: (recorder, summary, seconds)."""

    scenario: object
    cm: object
    inputs: SimInputs
    timing: ControlTiming
    seed: int
    factory: object
    peers_cm: object = None      # the peers' model: each workload served in its cameras' zone (regional.py)

    def __call__(self, name: str, progress=None) -> tuple[Recorder, dict, float]:
        policy = self.factory(name, self.scenario, self.timing)
        regional = self.cm if name in PLANNING_POLICIES or self.peers_cm is None else self.peers_cm
        cm = policy.cluster_model(regional)
        t0 = time.perf_counter()
        with stdout_silenced():  # HiGHS debug prints would land in the printed table
            rec = run_policy(policy, cm, self.inputs, self.timing, self.seed, progress)
        seconds = time.perf_counter() - t0
        extra = {"node_wakes": rec.wakes, **policy.stats()}
        if hasattr(policy, "replans"):
            extra["planner_calls"] = policy.replans
        if hasattr(policy, "replan_reasons"):
            extra["replan_reasons"] = dict(sorted(policy.replan_reasons.items()))
        tuning = policy.tuning(cm)
        if regional is not self.cm:
            tuning = {**tuning, "zones": RULE}
        if tuning:
            extra["tuning"] = tuning
        log.info("%s: %.1f s", name, seconds)
        return rec, rec.summary(rec.scaling_events, extra), seconds


_JOB: _Job | None = None
_PROGRESS = None


def _init_worker(job: _Job, queue) -> None:
    global _JOB, _PROGRESS
    _JOB, _PROGRESS = job, queue


def _run_in_worker(name: str):
    return _JOB(name, lambda done, total: _PROGRESS.put((name, done, total)))


def _run_parallel(job: _Job, policies, workers: int, progress_factory) -> dict:
    """Policies in worker processes (forked: they inherit the job instead of pickling it), the
    slowest (planner-driven) ones first; progress comes back over a queue."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    bars = {name: progress_factory(name) for name in policies} if progress_factory else {}
    order = sorted(policies, key=lambda n: n not in PLANNING_POLICIES)
    runs = {}
    with ProcessPoolExecutor(min(workers, len(policies)), mp_context=ctx, initializer=_init_worker,
                             initargs=(job, queue)) as pool:
        futures = {pool.submit(_run_in_worker, name): name for name in order}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            _drain(queue, bars)
            for f in done:
                runs[futures[f]] = f.result()
    _drain(queue, bars)
    return runs


def _drain(queue, bars) -> None:
    while True:
        try:
            name, done, total = queue.get_nowait()
        except Empty:
            return
        if name in bars:
            bars[name](done, total)


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
