"""What the servers (KEDA scaler, scheduler extender) read: the latest plan, held in memory.

A `PlanSource` is refreshed in the background (from telemetry, or once from a scenario in the
demo); request handlers only call `current()`, which never blocks on I/O.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from wattwise.models.plan import Plan
from wattwise.models.planner import plan as make_plan
from wattwise.models.snapshot import PolicyState, Snapshot


@dataclass(frozen=True)
class PlanView:
    snapshot: Snapshot
    plan: Plan
    state: PolicyState
    updated_s: float
    degraded: bool = False
    degraded_reasons: tuple[str, ...] = ()
    version: int = 0                  # the plan's version: a new plan, a new number
    # What the plan was made from that the snapshot does not say, for people (GET /plan):
    # "nodes_source" (str), "left_out" (list of {"scaled_object", "reason"}).
    inputs: Mapping[str, Any] = field(default_factory=dict)
    # Workload key -> the view of the objective its ScaledObject asks for, where that is not this
    # view's: KEDA counts its replicas in that plan, so the extender places them by it too.
    workload_views: Mapping[str, "PlanView"] = field(default_factory=dict)

    def for_workload(self, key: str) -> "PlanView":
        """The view whose plan the workload's replicas follow (this one unless it asks for another
        objective)."""
        return self.workload_views.get(key, self)

    def workload_plan(self, key: str):
        """The workload's `WorkloadPlan` in the plan it follows (None: not planned)."""
        return self.for_workload(key).plan.workloads.get(key) or self.plan.workloads.get(key)


@runtime_checkable
class PlanSource(Protocol):
    def current(self) -> PlanView: ...


class StaticPlanSource:
    """One plan from one snapshot (the demo, tests). `replace()` swaps in a new snapshot."""

    def __init__(self, snapshot: Snapshot):
        self._lock = threading.Lock()
        self._view = self._compute(snapshot, version=1)

    @staticmethod
    def _compute(snapshot: Snapshot, degraded_reasons: tuple[str, ...] = (), version: int = 1) -> PlanView:
        plan, state = make_plan(snapshot)
        return PlanView(snapshot, plan, state, snapshot.now_s, bool(degraded_reasons), degraded_reasons, version,
                        {"nodes_source": f"{len(snapshot.nodes)} nodes of a scenario file"})

    def current(self) -> PlanView:
        with self._lock:
            return self._view

    def replace(self, snapshot: Snapshot, degraded_reasons: tuple[str, ...] = ()) -> PlanView:
        view = self._compute(snapshot, degraded_reasons, self._view.version + 1)
        with self._lock:
            self._view = view
        return view
