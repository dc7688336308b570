"""Which pod goes first on scale-down: Kubernetes' ReplicaSet order (controller_utils.go
`ActivePodsWithRanks.Less`), and the simulator deleting by it."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from functools import cmp_to_key
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, strategies as st

from wattwise.models.delete_order import (PodPhase, ScaleDownPod, _less, deletion_order, planned_deletion_costs,
                                          pods_to_delete)


def first(*pods: ScaleDownPod, now_s=None) -> int:
    return deletion_order(pods, now_s)[0]


@pytest.mark.parametrize("goes_first,stays", [
    (ScaleDownPod(node=""), ScaleDownPod(node="a", phase=PodPhase.PENDING, ready=False, deletion_cost=-100)),
    (ScaleDownPod("a", PodPhase.PENDING, ready=False), ScaleDownPod("b", PodPhase.UNKNOWN, ready=False)),
    (ScaleDownPod("a", PodPhase.UNKNOWN, ready=False), ScaleDownPod("b", PodPhase.RUNNING, ready=False)),
    # not ready before ready, whatever the deletion cost says
    (ScaleDownPod("a", ready=False, deletion_cost=1000), ScaleDownPod("b", ready=True, deletion_cost=-1000)),
    (ScaleDownPod("a", deletion_cost=-1), ScaleDownPod("b", deletion_cost=0)),
    (ScaleDownPod("a", ready_since_s=100.0), ScaleDownPod("b", ready_since_s=50.0)),   # ready more recently
    (ScaleDownPod("a", ready_since_s=None), ScaleDownPod("b", ready_since_s=50.0)),    # no ready time
    (ScaleDownPod("a", restarts=3), ScaleDownPod("b", restarts=1)),
    (ScaleDownPod("a", created_s=10.0), ScaleDownPod("b", created_s=5.0)),             # newer
])
def test_each_rule_in_turn(goes_first, stays):
    assert first(goes_first, stays) == 0
    assert first(stays, goes_first) == 1


def test_doubled_up_pods_go_before_lone_ones_and_cost_comes_before_that():
    pods = [ScaleDownPod("a"), ScaleDownPod("b"), ScaleDownPod("b")]
    assert deletion_order(pods)[0] in (1, 2)
    pods = [ScaleDownPod("a", deletion_cost=-1), ScaleDownPod("b"), ScaleDownPod("b")]
    assert first(*pods) == 0


def test_ready_times_compare_by_power_of_two_then_uid():
    now = 1000.0
    # 100 s and 120 s ago are in the same power of two of nanoseconds: the lower UID goes first
    same = [ScaleDownPod("a", ready_since_s=now - 100, uid="b"), ScaleDownPod("b", ready_since_s=now - 120, uid="a")]
    assert first(*same, now_s=now) == 1
    apart = [ScaleDownPod("a", ready_since_s=now - 900, uid="a"), ScaleDownPod("b", ready_since_s=now - 100, uid="b")]
    assert first(*apart, now_s=now) == 1


def test_pods_alike_keep_their_order_and_k_is_bounded():
    pods = [ScaleDownPod("a"), ScaleDownPod("b"), ScaleDownPod("c")]
    assert deletion_order(pods) == [0, 1, 2]
    assert pods_to_delete(pods, 2) == [0, 1]
    assert pods_to_delete(pods, 9) == [0, 1, 2] and pods_to_delete(pods, -1) == []


def test_planned_costs_put_pods_over_the_plan_first():
    nodes = ["x", "x", "x", "y", "z"]
    costs = planned_deletion_costs([ScaleDownPod(n) for n in nodes], {"x": 1, "y": 2})
    assert costs == [-2, -2, 1, 2, -1]                     # x: the two it holds beyond the plan's one
    ready = [ScaleDownPod(n, deletion_cost=c) for n, c in zip(nodes, costs)]
    assert sorted(pods_to_delete(ready, 3)) == [0, 1, 4]   # exactly the pods over the plan
    # a starting pod on the planned node still goes before every ready one
    starting = ready[:3] + [ScaleDownPod("y", PodPhase.PENDING, ready=False, deletion_cost=2)] + ready[4:]
    assert pods_to_delete(starting, 1) == [3]


def test_the_simulator_deletes_by_the_core_order():
    """Starting (not ready) pods before ready ones over the plan, as Kubernetes does: the wattwise
    policy asks `pods_to_delete` over the costs the plan gives the pods."""
    from wattwise.models.scenario import load_scenario
    from wattwise.simulations.cluster_model import build_cluster_model
    from wattwise.simulations.cluster_state import ClusterState
    from wattwise.simulations.policies.wattwise_policy import WattwisePolicy

    scenario = load_scenario(Path(__file__).resolve().parents[2] / "scenarios" / "metro-retail.yaml")
    cm = build_cluster_model(scenario.snapshot)
    st = ClusterState(cm)
    w = 0
    on_plan, off_plan = np.flatnonzero(cm.eligible[w])[:2]
    st.add_pod(w, int(off_plan), 0.0, instant=True)
    st.add_pod(w, int(off_plan), 0.0, instant=True)
    st.add_pod(w, int(on_plan), 0.0)              # still starting
    policy = WattwisePolicy.__new__(WattwisePolicy)
    policy.planned = np.zeros((cm.n_workloads, cm.n_nodes), np.int64)
    policy.planned[w, on_plan] = 1

    class Ctx:
        pass

    ctx = Ctx()
    ctx.cm, ctx.st = cm, st
    assert policy.victims(ctx, w, 1) == [on_plan]
    assert policy.victims(ctx, w, 3) == [on_plan, off_plan, off_plan]


def test_only_the_pods_over_the_plan_are_marked_so_a_scale_down_lands_on_the_plan():
    """Plan {A: 2, B: 2}, running {A: 3, B: 3}, A's pods the newer: one cost per node (-1 on all
    six) left the controller its own tie-break, the newest first, and it took both from A."""
    pods = ([ScaleDownPod("A", created_s=100.0 + i, uid=f"a{i}") for i in range(3)]
            + [ScaleDownPod("B", created_s=float(i), uid=f"b{i}") for i in range(3)])
    costs = planned_deletion_costs(pods, {"A": 2, "B": 2})
    assert sorted(costs) == [-1, -1, 2, 2, 2, 2]
    priced = [replace(p, deletion_cost=c) for p, c in zip(pods, costs)]
    left = Counter(p.node for i, p in enumerate(pods) if i not in pods_to_delete(priced, 2, now_s=1000.0))
    assert left == {"A": 2, "B": 2}
    # on each node the marked pod is the one the controller would delete there first: the newest
    assert {pods[i].uid for i, c in enumerate(costs) if c < 0} == {"a2", "b2"}


def test_a_starting_pod_on_an_over_plan_node_is_the_one_marked():
    pods = [ScaleDownPod("A"), ScaleDownPod("A", PodPhase.PENDING, ready=False), ScaleDownPod("A")]
    assert planned_deletion_costs(pods, {"A": 2}) == [2, -1, 2]


_untimed_pods = st.lists(st.builds(ScaleDownPod, node=st.sampled_from(["", "a", "b", "c"]),
                                   phase=st.sampled_from(list(PodPhase)), ready=st.booleans(),
                                   deletion_cost=st.integers(-2, 2), restarts=st.integers(0, 2)), max_size=30)


@given(_untimed_pods, st.data())
def test_the_key_order_for_pods_without_times_is_the_comparators(pods, data):
    """Pods with no ready or creation times (the simulator's) are sorted by a key: the same order
    as `_less` gives, ties (pods alike) in the order given, also when one object is listed often."""
    pods = pods + [pods[i] for i in data.draw(st.lists(st.integers(0, max(len(pods) - 1, 0)), max_size=10))] \
        if pods else pods
    on_node = Counter(p.node for p in pods)

    def compare(a: int, b: int) -> int:
        less = _less(pods[a], pods[b], on_node[pods[a].node], on_node[pods[b].node], None)
        return -1 if less else (1 if _less(pods[b], pods[a], on_node[pods[b].node], on_node[pods[a].node], None) else 0)

    assert deletion_order(pods) == sorted(range(len(pods)), key=cmp_to_key(compare))
