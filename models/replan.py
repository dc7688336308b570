"""When a refresher re-plans: a pure rule on what the last plan was made for and now.

A plan costs a solver run, so the scaler's background refresher and the simulator re-plan only
when the answer can change materially:

- `max-interval`: the plan is `max_interval_s` old (a plan is never kept longer);
- `pending`: a pod is pending and no waking node can take it;
- `demand-up`: a workload's planning demand (the peak over the planner's scale-down window)
  came within `demand_change` of the plan's capacity and exceeds what the plan was sized for;
- `demand-down`: the planning demand fell `2 * demand_change` below what the plan was sized for
  and, with the headroom, would fit in one replica fewer (of the plan's mean replica capacity)
  than the plan has, above the workload's floor. Demand that fell while the window's peak still
  holds, or that falls within what the replicas give anyway, gives the same replica count;
- `carbon`: a zone's cost weight under the objective (`models.costs.zone_weights`) moved by
  `carbon_change`; under the energy objective carbon does not change the weights at all;
and never sooner than `min_interval_s` after the last plan.

`DemandWindow` keeps every refresher sample of demand within the window, and hands them to the
planner as `PolicyState.demand_history`: what that history would hold had the planner been called
on every interval, so skipping a call never changes the peak a plan is sized for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wattwise.models.frozen import FrozenMap
from wattwise.models.plan import Plan
from wattwise.models.snapshot import Snapshot


@dataclass(frozen=True)
class ReplanSettings:
    min_interval_s: float = 30.0
    max_interval_s: float = 1800.0
    demand_change: float = 0.05
    carbon_change: float = 0.05


@dataclass(frozen=True)
class PlanMark:
    """What a plan was made for: its time; per workload the demand it was sized for, the
    capacity and replicas it gives, the headroom and replica floor it kept; per zone the cost
    weight it used."""

    now_s: float
    sized_fps: np.ndarray
    capacity_fps: np.ndarray
    replicas: np.ndarray
    headroom: np.ndarray
    floor: np.ndarray
    weights: np.ndarray

    @classmethod
    def of(cls, plan: Plan, snapshot: Snapshot, weights: np.ndarray) -> "PlanMark":
        wps = [plan.workloads[w.key] for w in snapshot.workloads]
        return cls(plan.now_s, np.array([wp.demand_fps for wp in wps]), np.array([wp.capacity_fps for wp in wps]),
                   np.array([wp.replicas for wp in wps], dtype=float),
                   np.array([w.headroom_or(snapshot.settings.headroom) for w in snapshot.workloads]),
                   np.array([w.min_replicas for w in snapshot.workloads], dtype=float), np.asarray(weights, dtype=float))


def needs_replan(last: PlanMark | None, now_s: float, planning_fps: np.ndarray, weights: np.ndarray,
                 pods_waiting: bool, settings: ReplanSettings) -> tuple[bool, str]:
    """(re-plan?, reason). `planning_fps`: per workload, the peak demand over the planner's
    scale-down window including now; `weights`: per zone, `zone_weights` now."""
    if last is None:
        return True, "first plan"
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
    """Demand samples per workload over the last `window_s` (the planner's scale-down window)."""

    def __init__(self, keys, window_s: float, step_s: float):
        self.keys = tuple(keys)
        self.window_s = window_s
        slots = int(np.ceil(window_s / step_s)) + 1
        self.t = np.full(slots, -np.inf)
        self.fps = np.zeros((slots, len(self.keys)))
        self.i = 0

    def add(self, now_s: float, demand_fps: np.ndarray) -> None:
        self.t[self.i % len(self.t)] = now_s
        self.fps[self.i % len(self.t)] = demand_fps
        self.i += 1

    def _inside(self, now_s: float) -> np.ndarray:
        return self.t >= now_s - self.window_s

    def peak(self, now_s: float, demand_fps: np.ndarray) -> np.ndarray:
        inside = self._inside(now_s)
        return np.maximum(demand_fps, self.fps[inside].max(axis=0)) if inside.any() else demand_fps

    def history(self, now_s: float):
        """As `PolicyState.demand_history`: key -> ((t_s, fps), ...) oldest first."""
        rows = np.flatnonzero(self._inside(now_s))
        rows = rows[np.argsort(self.t[rows])]
        return FrozenMap({k: tuple((float(self.t[r]), float(self.fps[r, j])) for r in rows)
                                 for j, k in enumerate(self.keys)})
