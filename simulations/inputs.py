"""Everything the simulation replays, on one clock: demand per workload, carbon per zone."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from wattwise.models.errors import InvalidInputError
from wattwise.models.scenario import Scenario
from wattwise.simulations.traces import CarbonTrace, DemandTrace, load_carbon_trace, load_demand_trace, streams_from_rate


@dataclass(frozen=True)
class SimInputs:
    step_s: float
    n_steps: int
    workload_keys: tuple[str, ...]
    zones: tuple[str, ...]
    streams: np.ndarray          # [T, W] active streams
    demand_fps: np.ndarray       # [T, W]
    carbon_g_per_kwh: np.ndarray  # [T, Z]
    carbon_start: str
    demand_start: str
    described: dict = field(default_factory=dict)

    @property
    def times_s(self) -> np.ndarray:
        return np.arange(self.n_steps) * self.step_s


def _instant(text: str | None, what: str) -> pd.Timestamp | None:
    if text is None:
        return None
    try:
        ts = pd.Timestamp(text)
    except (ValueError, TypeError):
        raise InvalidInputError(what, f"{text!r} is not a date", "use ISO 8601, e.g. 2023-06-01 or 2023-06-01T06:00Z") from None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


# Nothing the simulated control plane does is faster than a second (the HPA syncs every 15 s, KEDA
# polls every 30 s): a shorter step only multiplies the work (0.001 s over a week: 605M steps).
MIN_STEP_S = 1.0
MAX_STEP_S = 3600.0
MAX_STEPS = 2_000_000          # a year at 60 s is 525,600 steps; more is hours of work, not a typo to run


def check_step_s(step_s: float, what: str) -> float:
    """The simulation step, refused outside [MIN_STEP_S, MAX_STEP_S] seconds."""
    if not MIN_STEP_S <= step_s <= MAX_STEP_S:
        raise InvalidInputError(what, f"must be at least {MIN_STEP_S:g} and at most {MAX_STEP_S:g} seconds, "
                                      f"got {step_s:g}")
    return step_s


def build_inputs(scenario: Scenario, *, demand_csv=None, demand_start=None, carbon_csv=None, start=None,
                 days=None, step_s=None) -> SimInputs:
    spec = scenario.spec
    sim = spec.simulation
    days = float(days if days is not None else sim.days)
    if not 0 < days < math.inf:
        raise InvalidInputError("--days", f"must be > 0, got {days:g}")
    step_from = "--step-s" if step_s is not None else f"{scenario.path}: simulation.step_s"
    step_s = check_step_s(float(step_s if step_s is not None else sim.step_s), step_from)
    n_steps = int(round(days * 86400 / step_s))
    if n_steps < 1:
        raise InvalidInputError("--days", f"{days:g} days is less than one {step_s:g} s step", "simulate longer")
    if n_steps > MAX_STEPS:
        raise InvalidInputError("--days", f"{days:g} days in {step_s:g} s steps is {n_steps:,} steps, more than "
                                          f"{MAX_STEPS:,}", "simulate fewer days or use a longer step")
    offsets = np.arange(n_steps) * step_s

    # carbon per zone
    traces: dict[str, CarbonTrace | None] = {}
    overrides = dict(carbon_csv or {})
    for zone in overrides:
        if zone not in spec.zones:
            raise InvalidInputError("--carbon", f"unknown zone {zone!r}", f"zones in the scenario: {', '.join(spec.zones)}")
    for zone, zs in spec.zones.items():
        if zone in overrides:
            traces[zone] = load_carbon_trace(overrides[zone])
        elif zs.carbon_trace:
            traces[zone] = load_carbon_trace(scenario.resolve(zs.carbon_trace))
        else:
            traces[zone] = None
    firsts = [t.times[0] for t in traces.values() if t is not None]
    c_start = _instant(start or sim.start, "--start") or (max(firsts) if firsts else pd.Timestamp("2023-01-01", tz="UTC"))
    zones = tuple(spec.zones)
    carbon = np.empty((n_steps, len(zones)))
    carbon_info = {}
    for z, zone in enumerate(zones):
        tr = traces[zone]
        if tr is None:
            carbon[:, z] = spec.zones[zone].carbon_g_per_kwh
            carbon_info[zone] = {"source": "constant from scenario", "gaps_filled": 0}
        else:
            carbon[:, z] = tr.sample(c_start, offsets, f"--carbon {zone}")
            r = tr.report
            carbon_info[zone] = {"source": tr.path, "column": r.column, "gaps_filled": r.gaps_filled,
                                 "missing_rows": r.missing_rows, "missing_values": r.missing_values,
                                 "duplicates_dropped": r.duplicates_dropped, "leading_dropped": r.leading_dropped,
                                 "mean_g_per_kwh": round(float(carbon[:, z].mean()), 1)}

    # demand per workload
    d_path = demand_csv or (scenario.resolve(sim.demand_trace) if sim.demand_trace else None)
    workloads = scenario.snapshot.workloads
    streams = np.empty((n_steps, len(workloads)))
    demand_info: dict = {}
    trace: DemandTrace | None = load_demand_trace(d_path) if d_path else None
    d_start = _instant(demand_start, "--demand-start") or (trace.start if trace else c_start)
    if trace is not None:
        end = d_start + pd.Timedelta(seconds=n_steps * step_s)
        if d_start < trace.start or end > trace.end + pd.Timedelta(seconds=1):
            raise InvalidInputError("--demand-start", f"the replayed window {d_start} .. {end} is outside the demand "
                                                      f"trace ({trace.start} .. {trace.end})",
                                    "choose --demand-start / --days inside it")
        demand_info = {"source": trace.path, "mode": trace.mode, "rows": trace.rows, "interval_s": trace.interval_s,
                       "wrapped_samples": {}}
    for wi, (w, ws) in enumerate(zip(workloads, spec.workloads)):
        prof = ws.demand_profile
        if trace is None or prof is None:
            streams[:, wi] = w.demand.streams if w.demand.streams is not None else 0.0
            continue
        rate, wrapped = trace.sample(d_start, offsets + prof.phase_h * 3600.0)
        streams[:, wi] = streams_from_rate(rate, prof.peak_streams, prof.floor_streams)
        demand_info["wrapped_samples"][w.key] = wrapped
    fps_per_stream = np.array([w.sla.fps_per_stream for w in workloads])
    demand_fps = streams * fps_per_stream[None, :]
    for wi, w in enumerate(workloads):  # workloads given as total fps, without a profile
        if w.demand.total_fps is not None and (trace is None or spec.workloads[wi].demand_profile is None):
            demand_fps[:, wi] = w.demand.total_fps
    described = {"carbon": carbon_info, "demand": demand_info, "days": days, "step_s": step_s, "steps": n_steps,
                 "carbon_start": str(c_start), "demand_start": str(d_start)}
    return SimInputs(step_s, n_steps, tuple(w.key for w in workloads), zones, streams, demand_fps, carbon,
                     str(c_start), str(d_start), described)
