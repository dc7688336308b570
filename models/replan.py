"""When a refresher re-plans: a pure rule on what the last plan was made for and now.

A plan costs a solver run, so the scaler's background refresher (`scaler/refresher.py`) and the
simulator (`simulations/policies/wattwise_policy.py`) both call `needs_replan` and re-plan only
when the answer can change materially:

- `workloads-changed`, `trust-changed`, `nodes-changed` (only when the caller passes `inputs`,
  as the scaler does: its workloads come and go with ScaledObjects): what the plan was made of
  besides demand and carbon differs (a workload registered, changed or forgotten; a workload's
  demand became untrustworthy or trustworthy again; a node came, went or changed what it can
  run). These re-plan at once, even within `min_interval_s`;
- `max-interval`: the plan is `max_interval_s` old (a plan is never kept longer);
- `pending`: pods have waited for a node (unbound) for a while (`models.plan_cycle`);
- `demand-up`: a workload's planning demand (the peak over the planner's scale-down window)
  came within `demand_change` of the plan's capacity and exceeds what the plan was sized for;
- `demand-down`: the planning demand fell `2 * demand_change` below what the plan was sized for
  and, with the headroom, would fit in one replica fewer (of the plan's mean replica capacity)
  than the plan has, above the workload's floor. Demand that fell while the window's peak still
  holds, or that falls within what the replicas give anyway, gives the same replica count;
- `carbon`: a zone's cost weight under the objective (`models.costs.zone_weights`) moved by
  `carbon_change`; under the energy objective carbon does not change the weights at all;
and never sooner than `min_interval_s` after the last plan. All times are seconds of the caller's
injected clock.

`DemandWindow` keeps every refresher sample of demand within the window, and hands them to the
planner as `PolicyState.demand_history`: what that history would hold had the planner been called
on every interval, so skipping a call never changes the peak a plan is sized for. A sample may be
NaN (no trustworthy value then: the planner does not add untrustworthy demand to its history).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wattwise.models.frozen import FrozenMap
from wattwise.models.plan import Plan
from wattwise.models.snapshot import Snapshot
from wattwise.models.workload import Demand


@dataclass(frozen=True)
class ReplanSettings:
    min_interval_s: float = 30.0
    max_interval_s: float = 1800.0
    demand_change: float = 0.05
    carbon_change: float = 0.05


@dataclass(frozen=True)
class PlanInputs:
    """What a plan was made of besides demand values and carbon: the workloads (demand left out),
    which of them had untrustworthy demand, and the nodes (what each can run, not its power state
    or the room other pods leave: those move all the time and are the gate's other reasons); the
    energy models' version and each pair's capacity (a refit, or a capacity lowered from drops);
    and the stream counts a person configured (not measured: a change is a decision, not noise)."""

    workloads: tuple
    untrusted: tuple[str, ...]
    nodes: tuple
    models_version: int = 0
    capacities: tuple = ()
    configured: tuple = ()

    @classmethod
    def of(cls, snapshot: Snapshot, models_version: int = 0, configured: tuple = (),
           nodes: tuple | None = None) -> "PlanInputs":
        """`models_version`: of the energy models the snapshot's come from; `configured`: the
        (workload, streams) pairs given in configuration rather than measured; `nodes`: the
        nodes' part, `nodes_part(snapshot)`, when the caller kept it for these very nodes."""
        return cls(models_version=models_version, configured=configured,
                   capacities=tuple(sorted((pair, m.capacity_fps) for pair, m in snapshot.models.items())),
                   workloads=tuple(w.with_demand(_NO_DEMAND) for w in snapshot.workloads),
                   untrusted=tuple(w.key for w in snapshot.workloads if not w.demand.trustworthy),
                   nodes=nodes if nodes is not None else nodes_part(snapshot))

    def change(self, now: "PlanInputs") -> str:
        """The gate's reason when `now` differs, else ''."""
        if now.workloads != self.workloads:
            return "workloads-changed"
        if now.untrusted != self.untrusted:
            return "trust-changed"
        if now.nodes != self.nodes:
            return "nodes-changed"
        if now.models_version != self.models_version:
            return "models-changed"
        if now.configured != self.configured:
            return "streams-changed"
        if now.capacities != self.capacities:
            before = dict(self.capacities)
            lowered = any(pair not in before or cap < before[pair] for pair, cap in now.capacities)
            return "capacity-corrected" if lowered else "capacity-correction-expired"
        return ""


_NO_DEMAND = Demand()


def nodes_part(snapshot: Snapshot) -> tuple:
    """What `PlanInputs` compares of the nodes: what each can run, not its power state."""
    return (tuple(sorted(snapshot.node_classes.items())),
            tuple((n.name, n.node_class, n.zone, n.tee_ready, n.allocatable, n.schedulable, n.labels, n.taints)
                  for n in snapshot.nodes))


@dataclass(frozen=True)
class PlanMark:
    """What a plan was made for: its time; per workload the demand it was sized for, the
    capacity and replicas it gives, the headroom and replica floor it kept; per zone the cost
    weight it used; and what it was made of (`PlanInputs`)."""

    now_s: float
    sized_fps: np.ndarray
    capacity_fps: np.ndarray
    replicas: np.ndarray
    headroom: np.ndarray
    floor: np.ndarray
    weights: np.ndarray
    inputs: PlanInputs | None = None

    @classmethod
    def of(cls, plan: Plan, snapshot: Snapshot, weights: np.ndarray,
           inputs: PlanInputs | None = None) -> "PlanMark":
        """`inputs`: what the plan was made of (default `PlanInputs.of(snapshot)`)."""
        wps = [plan.workloads[w.key] for w in snapshot.workloads]
        return cls(plan.now_s, np.array([wp.demand_fps for wp in wps]), np.array([wp.capacity_fps for wp in wps]),
                   np.array([wp.replicas for wp in wps], dtype=float),
                   np.array([w.headroom_or(snapshot.settings.headroom) for w in snapshot.workloads]),
                   np.array([w.min_replicas for w in snapshot.workloads], dtype=float), np.asarray(weights, dtype=float),
                   inputs if inputs is not None else PlanInputs.of(snapshot))


def needs_replan(last: PlanMark | None, now_s: float, planning_fps: np.ndarray, weights: np.ndarray,
                 pods_waiting: bool, settings: ReplanSettings, inputs: PlanInputs | None = None) -> tuple[bool, str]:
    """(re-plan?, reason). `planning_fps`: per workload, the peak demand over the planner's
    scale-down window including now; `weights`: per zone, `zone_weights` now; `inputs`: what a
    plan now would be made of (`PlanInputs.of` the snapshot now), or None not to compare them."""
    if last is None:
        return True, "first plan"
    if inputs is not None:
        changed = last.inputs.change(inputs) if last.inputs is not None else "workloads-changed"
        if changed:
            return True, changed
    since = now_s - last.now_s
    if since < settings.min_interval_s:
        return False, "too soon"
    if since >= settings.max_interval_s:
        return True, "max-interval"
    if pods_waiting:
        return True, "pending"
    c = settings.demand_change
    if np.any((planning_fps > last.capacity_fps / (1 + c)) & (planning_fps > last.sized_fps)):
        return True, "demand-up"
    fewer = last.capacity_fps * (last.replicas - 1) / np.maximum(last.replicas, 1)
    if np.any((planning_fps < last.sized_fps * (1 - 2 * c)) & (last.replicas > last.floor)
              & (planning_fps * (1 + last.headroom) <= fewer)):
        return True, "demand-down"
    if np.any(np.abs(weights - last.weights) > settings.carbon_change * np.maximum(last.weights, 1e-9)):
        return True, "carbon"
    return False, "unchanged"


class DemandWindow:
    """Demand samples per workload over the last `window_s` (the planner's scale-down window).

    A sample at the time of the latest one replaces it (a refresher may read twice within one
    plan interval); the buffer grows rather than overwrite a sample still inside the window."""

    def __init__(self, keys, window_s: float, step_s: float):
        self.keys = tuple(keys)
        self.window_s = window_s
        self.step_s = step_s
        slots = int(np.ceil(window_s / step_s)) + 1 if step_s > 0 else 2
        self.t = np.full(slots, -np.inf)
        self.fps = np.zeros((slots, len(self.keys)))
        self.i = 0

    def add(self, now_s: float, demand_fps: np.ndarray) -> None:
        """`demand_fps` per key; NaN where no trustworthy value was read."""
        n = len(self.t)
        if self.i and self.t[(self.i - 1) % n] == now_s:
            self.fps[(self.i - 1) % n] = demand_fps
            return
        slot = self.i % n
        if self.t[slot] >= now_s - self.window_s:      # still inside the window: make room
            order = np.argsort(self.t)
            self.t = np.concatenate([self.t[order], np.full(n, -np.inf)])
            self.fps = np.concatenate([self.fps[order], np.zeros_like(self.fps)])
            self.i, slot = n, n
        self.t[slot] = now_s
        self.fps[slot] = demand_fps
        self.i += 1

    def _inside(self, now_s: float) -> np.ndarray:
        return self.t >= now_s - self.window_s

    def peak(self, now_s: float, demand_fps: np.ndarray) -> np.ndarray:
        inside = self._inside(now_s)
        return np.fmax(demand_fps, np.fmax.reduce(self.fps[inside], axis=0)) if inside.any() else demand_fps

    def history(self, now_s: float):
        """As `PolicyState.demand_history`: key -> ((t_s, fps), ...) oldest first (NaN samples left out)."""
        rows = np.flatnonzero(self._inside(now_s))
        rows = rows[np.argsort(self.t[rows])]
        t, fps = self.t[rows].tolist(), self.fps[rows].T.tolist()
        return FrozenMap({k: tuple((ts, d) for ts, d in zip(t, fps[j]) if d == d)    # d != d: NaN
                          for j, k in enumerate(self.keys)})

    def rekeyed(self, keys) -> "DemandWindow":
        """The same samples under new keys: kept keys keep theirs, new keys start empty (NaN)."""
        keys = tuple(keys)
        if keys == self.keys:
            return self
        out = DemandWindow(keys, self.window_s, self.step_s)
        out.t, out.i = self.t.copy(), self.i
        out.fps = np.full((len(self.t), len(keys)), np.nan)
        where = {k: j for j, k in enumerate(self.keys)}
        for j, k in enumerate(keys):
            if k in where:
                out.fps[:, j] = self.fps[:, where[k]]
        return out
