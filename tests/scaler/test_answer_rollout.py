"""The answer's make-before-break surge only where the scale-down after it removes the off-plan
pods (`models.rollout.surge_applies`): with pod-deletion costs set, and not for a StatefulSet.
Otherwise the plan's replicas, whatever runs where: a surge the ReplicaSet controller resolves by
deleting the new pods is asked for again, and pods churn while nothing moves."""

from __future__ import annotations

import pytest

from wattwise.models.rollout import desired_replicas
from wattwise.scaler.answer import Rollout, is_active, metric_value
from wattwise.scaler.app import build_demo
from wattwise.scaler.metadata import parse_metadata
from wattwise.scaler.pod_counts import StaticPodCounts
from wattwise.scaler.sources import demo_metadata

from tests.scaler.helpers import NEVER, snapshot

KEY = "security/badge-readers"


@pytest.fixture(scope="module")
def moving():
    """A plan, its request, and pods all on a node the plan left, the planned ones not ready."""
    snap = snapshot()
    scaler = build_demo(snap, interval_s=NEVER)
    try:
        state = scaler.refresher.state()
        wp = state.default_view.plan.workloads[KEY]
        old = next(n.name for n in snap.nodes if n.name not in wp.by_node)
        w = next(w for w in snap.workloads if w.key == KEY)
        request = parse_metadata(w.name, w.namespace, demo_metadata(w))
        pods = StaticPodCounts({KEY: ({old: wp.replicas, **wp.by_node}, {old: wp.replicas})})
        yield request, state, pods, wp
    finally:
        scaler.refresher.stop()


def test_with_deletion_costs_a_deployment_gets_the_surge(moving):
    request, state, pods, wp = moving
    rollout = Rollout(deletion_cost_set=True, target_kind=lambda key: "Deployment")
    value = metric_value(request, state, pods, rollout)
    running, ready = pods.running_and_ready(KEY)
    assert value.value.as_int == desired_replicas(wp.replicas, wp.by_node, running, ready) == 2 * wp.replicas
    assert value.surge == wp.replicas and value.pods_known and value.surge_allowed


def test_an_unknown_kind_is_taken_as_keda_s_default_deployment(moving):
    request, state, pods, wp = moving
    assert metric_value(request, state, pods, Rollout(deletion_cost_set=True)).value.as_int == 2 * wp.replicas


@pytest.mark.parametrize("rollout", [
    Rollout(),                                                             # the default: no deletion costs
    Rollout(deletion_cost_set=False, target_kind=lambda key: "Deployment"),
    Rollout(deletion_cost_set=True, target_kind=lambda key: "StatefulSet"),   # highest ordinal goes first
], ids=["default", "no-deletion-cost", "statefulset"])
def test_otherwise_the_plan_s_replicas_whatever_runs_where(moving, rollout):
    request, state, pods, wp = moving
    value = metric_value(request, state, pods, rollout)
    assert (value.value.as_float, value.value.as_int, value.surge) == (float(wp.replicas), wp.replicas, 0)
    assert value.pods_known and not value.surge_allowed
    assert is_active(request, state, pods, rollout) == (wp.replicas > 0)


def test_the_kind_is_read_only_when_deletion_costs_are_set(moving):
    request, state, pods, _ = moving
    asked = []
    metric_value(request, state, pods, Rollout(deletion_cost_set=False, target_kind=asked.append))
    assert asked == []
    metric_value(request, state, pods, Rollout(deletion_cost_set=True, target_kind=asked.append))
    assert asked == [KEY]


def test_the_cluster_s_workloads_carry_their_scale_target_kind():
    from tests.models.kube_fixtures import read_workloads

    kinds = read_workloads().kinds
    assert kinds["retail/checkout-cams"] == "Deployment" and kinds["retail/lobby-gpu"] == "StatefulSet"
    rollout = Rollout(deletion_cost_set=True, target_kind=kinds.get)
    assert rollout.surge("retail/checkout-cams") and not rollout.surge("retail/lobby-gpu")
