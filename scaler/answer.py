"""The scaler's answers, as numbers (pure; no gRPC here).

Scheme (docs/scaler.md): one External metric per ScaledObject, named
`wattwise-<namespace>-<workload>`, metric type AverageValue, target 1, value = the replicas the
plan wants for the workload (summed over node classes, with those no node has room for yet:
`WorkloadPlan.asked_replicas`, `models/unplaced.py`). The HPA computes
ceil(value / target) = the planned replicas, so it lands exactly on the plan. `IsActive` is
true exactly when that value is above 0.

Holding: a plan held for lack of trustworthy demand is answered as planned (the core's
`hold_untrusted` never plans below the last trustworthy plan); one the core held with no
trustworthy demand ever (`WorkloadPlan.no_trusted_demand`) is not answered with a number but with
`NotPlanned`, so the HPA keeps its current count. No rule of the hold is repeated here. So is a
workload with demand the plan gives no replica at all (no class qualifies and no trustworthy plan
is left to keep, `models/unplaced.py`): answering 0 would scale it away.

When the workload's running and ready pods per node are known (the `PodCounts` port) and the
core's `models.rollout.surge_applies` (pod-deletion costs are set, `Rollout.deletion_cost_set`,
and the scale target is not a StatefulSet), the value is the core's
`models.rollout.desired_replicas`: the plan's replicas plus a surge of off-plan pods while planned
ones are not ready (make before break). Otherwise it is the plan's replicas.

KEDA reads the float field when it is > 0 (KEDA 2.17+) and the int field otherwise, so both are
sent: int = ceil(float). A target is never 0, negative or non-finite; a value that is negative or
non-finite (impossible from the planner, guarded anyway) becomes 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from wattwise.models.plan import WorkloadPlan
from wattwise.models.rollout import desired_replicas, surge_applies
from wattwise.models.trigger_metadata import MetadataError, ScalerRequest, quote
from wattwise.models.workload_build import objective_of
from wattwise.scaler.pod_counts import PodCounts
from wattwise.scaler.state import ScalerState

TARGET_PER_REPLICA = 1.0


class NotPlanned(RuntimeError):
    """The workload has no trustworthy plan yet; retrying after the next refresh helps."""


def _kind_unknown(workload_key: str) -> str | None:
    return None


@dataclass(frozen=True)
class Rollout:
    """What decides whether make before break may apply (`models.rollout.surge_applies`).
    `deletion_cost_set`: this WattWise keeps the plan's pod-deletion costs on the pods (`serve
    --set-deletion-cost`); `target_kind(workload_key)`: the ScaledObject's scaleTargetRef kind
    (Deployment, StatefulSet), None when unknown (KEDA-call registrations carry no kind)."""

    deletion_cost_set: bool = False
    target_kind: Callable[[str], str | None] = _kind_unknown

    def surge(self, workload_key: str) -> bool:
        kind = self.target_kind(workload_key) if self.deletion_cost_set else None   # only read when it matters
        return surge_applies(self.deletion_cost_set, kind)


NO_DELETION_COST = Rollout()   # the default: no pod-deletion costs, so never a surge


@dataclass(frozen=True)
class Number:
    """A value as KEDA gets it: the float and its integer ceiling."""

    as_float: float
    as_int: int


@dataclass(frozen=True)
class SpecAnswer:
    metric_name: str
    target: Number


@dataclass(frozen=True)
class ValueAnswer:
    metric_name: str
    value: Number
    workload: str
    held: bool
    degraded: bool
    planned: int = 0          # the plan's replicas; value - planned is the make-before-break surge
    pods_known: bool = False  # True: running/ready pods known (value from desired_replicas when surge_allowed)
    surge_allowed: bool = True  # False: no surge whatever the pods (no deletion costs, or a StatefulSet)

    @property
    def surge(self) -> int:
        return max(0, self.value.as_int - self.planned)


def as_value(x: float) -> Number:
    """A metric value: finite and >= 0, rounded to KEDA's 3 decimals, int = ceil."""
    if not math.isfinite(x) or x < 0:
        x = 0.0
    x = round(x, 3)
    return Number(x, int(math.ceil(x)))


def as_target(x: float) -> Number:
    """A target: strictly positive and finite (KEDA ignores a 0 float and divides by the target)."""
    if not math.isfinite(x) or x <= 0:
        raise ValueError(f"a metric target must be a positive finite number, got {x!r}")
    x = max(round(x, 3), 0.001)
    return Number(x, max(1, int(math.ceil(x))))


def metric_spec(request: ScalerRequest) -> SpecAnswer:
    return SpecAnswer(request.metric_name, as_target(TARGET_PER_REPLICA))


def check_metric_name(request: ScalerRequest, metric_name: str) -> None:
    """GetMetrics names the metric GetMetricSpec returned (KEDA strips its `sN-` prefix)."""
    if metric_name and metric_name != request.metric_name:
        raise MetadataError("metricName", f"unknown metric {quote(metric_name)} for this metadata",
                            f"expected {request.metric_name!r}, as GetMetricSpec returned", path="metricName")


def planned_replicas(request: ScalerRequest, state: ScalerState | None) -> tuple[int, bool]:
    """(replicas, held) for the request's workload under its objective. Raises NotPlanned."""
    wp = workload_plan(request, state)
    return wp.asked_replicas, wp.held


def workload_plan(request: ScalerRequest, state: ScalerState | None) -> WorkloadPlan:
    """The request's workload in the plan of its objective. Raises NotPlanned."""
    key = request.workload_key
    if state is None:
        raise NotPlanned("no plan yet: the first refresh is still running; retry shortly")
    view = state.view_for(objective_of(request, state.default_objective))
    wp = view.plan.workloads.get(key)
    if wp is None:
        raise NotPlanned(f"{key}: registered but not planned yet; the next refresh (within "
                         "moments) includes it")
    if wp.no_trusted_demand:    # the core's hold rule found nothing trustworthy to hold at
        raise NotPlanned(f"{key}: no trustworthy demand yet ({wp.reasons[0] if wp.reasons else 'no data'}); "
                         "the current replica count is kept until data arrives")
    if wp.asked_replicas == 0 and wp.unmet_fps > 0:
        # demand, and neither a node that qualifies nor a trustworthy plan to keep: answering 0
        # would scale the workload away; an error keeps what runs (or KEDA's fallback)
        raise NotPlanned(f"{key}: {wp.unmet_fps:.1f} fps demanded and no replica planned "
                         f"({wp.reasons[0] if wp.reasons else 'no node qualifies'}); the current replica count is kept")
    return wp


def metric_value(request: ScalerRequest, state: ScalerState | None, pods: PodCounts | None = None,
                 rollout: Rollout = NO_DELETION_COST) -> ValueAnswer:
    wp = workload_plan(request, state)
    counts = pods.running_and_ready(request.workload_key) if pods is not None else None
    surge_allowed = rollout.surge(request.workload_key)
    if counts is None or not surge_allowed:
        replicas = wp.asked_replicas
    else:
        running, ready = counts
        replicas = desired_replicas(wp.asked_replicas, wp.by_node, running, ready)
    return ValueAnswer(request.metric_name, as_value(float(replicas) * TARGET_PER_REPLICA), request.workload_key,
                       wp.held, state.degraded, wp.asked_replicas, counts is not None, surge_allowed)


def is_active(request: ScalerRequest, state: ScalerState | None, pods: PodCounts | None = None,
              rollout: Rollout = NO_DELETION_COST) -> bool:
    """Active exactly when the value GetMetrics reports (the same call) is above 0."""
    return metric_value(request, state, pods, rollout).value.as_float > 0
