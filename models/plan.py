"""The planner's output."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Mapping


@dataclass(frozen=True)
class Placement:
    workload: str
    node: str
    node_class: str
    zone: str
    replicas: int
    node_tees: tuple[str, ...]
    requirement: str


@dataclass(frozen=True)
class WorkloadPlan:
    workload: str
    replicas: int
    by_class: Mapping[str, int]
    by_node: Mapping[str, int]
    demand_fps: float           # demand the plan was sized for (after stabilisation and holds)
    observed_demand_fps: float  # demand as reported now
    capacity_fps: float
    unmet_fps: float
    power_w: float
    carbon_g_per_h: float
    held: bool                  # replicas held because telemetry was untrustworthy
    ranking: tuple[str, ...]    # allowed nodes, cheapest marginal cost per frame first
    reasons: tuple[str, ...]
    no_trusted_demand: bool = False  # held with no trustworthy demand ever planned: no basis to scale on
    forecast_added_fps: float = 0.0  # pre-warming: demand expected a lead ahead (refresh + start-up), above the peak
    unplaced_replicas: int = 0       # needed but no node has room: asked for, to wait Pending (`models/unplaced`)

    @property
    def asked_replicas(self) -> int:
        """Replicas asked of the autoscaler: the placed ones and those waiting for a node."""
        return self.replicas + self.unplaced_replicas

    @property
    def feasible(self) -> bool:
        return self.unmet_fps <= 1e-6


@dataclass(frozen=True)
class Plan:
    now_s: float
    objective: str
    workloads: Mapping[str, WorkloadPlan]
    placements: tuple[Placement, ...]
    active_nodes: tuple[str, ...]
    idle_nodes: tuple[str, ...]
    power_w: float
    carbon_g_per_h: float
    objective_value: float
    solver: str
    solver_gap: float
    reasons: tuple[str, ...]

    def replicas(self, workload: str) -> int:
        wp = self.workloads.get(workload)
        return wp.replicas if wp else 0

    def to_dict(self) -> dict:
        """Plain JSON-ready data (mappings to dicts, tuples to lists, non-finite numbers to None)."""
        d = _plain(self)
        for key, wp in self.workloads.items():
            d["workloads"][key]["feasible"] = wp.feasible
        return d


def _plain(value):
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
