"""Replicas no node has room for are still asked for (`models/unplaced.py`): they wait Pending for a
node autoscaler, and the autoscaler is never told fewer replicas than the demand needs."""

import math

from tests.models.builders import TDX, node, node_class, snapshot, workload
from wattwise.models.energy import WorkloadClassModel
from wattwise.models.planner import plan
from wattwise.models.replica_model import ReplicaPowerModel
from wattwise.models.snapshot import PolicyState
from wattwise.models.unplaced import unplaced_replicas


def model(capacity_fps, intercept_w=10.0, w_per_fps=1.0):
    return WorkloadClassModel("w", "c", ReplicaPowerModel.from_coefficients(intercept_w, w_per_fps), capacity_fps)


def test_the_missing_capacity_is_asked_for_on_the_cheapest_class_per_frame():
    cheap, dear = model(10.0, w_per_fps=1.0), model(40.0, w_per_fps=3.0)
    # 100 fps + 10% headroom = 110, 60 placed: 50 missing at 10 fps a replica on the cheaper class
    assert unplaced_replicas(100.0, 0.1, 60.0, 6, True, [dear, cheap], 0, 0, 1000) == 5
    assert unplaced_replicas(100.0, 0.1, 60.0, 6, True, [dear], 0, 0, 1000) == 2


def test_nothing_is_asked_beyond_the_plan_when_it_was_not_short():
    assert unplaced_replicas(100.0, 0.1, 105.0, 10, False, [model(10.0)], 0, 0, 1000) == 0


def test_the_floor_and_max_replicas_bound_it():
    assert unplaced_replicas(10.0, 0.0, 10.0, 1, False, [model(10.0)], 4, 0, 1000) == 3     # min_replicas / a hold
    assert unplaced_replicas(100.0, 0.0, 0.0, 0, True, [model(10.0)], 0, 0, 7) == 7         # max_replicas


def test_with_no_qualifying_class_left_the_last_trustworthy_plan_is_kept():
    assert unplaced_replicas(100.0, 0.1, 0.0, 0, True, [], 0, 6, 1000) == 6
    assert unplaced_replicas(100.0, 0.1, 0.0, 0, True, [model(0.0)], 0, 6, 1000) == 6


def test_a_full_tee_class_asks_for_pending_replicas_and_never_places_them_elsewhere():
    tdx, plain = node_class("tdx", tees=[TDX], cores=16), node_class("plain", cores=128)
    s = snapshot([tdx, plain], [node("t1", tdx), node("p1", plain)], [workload(fps=500, tees=["tdx"])])
    wp = plan(s)[0].workloads["default/w"]
    assert set(wp.by_node) == {"t1"} and wp.replicas == 4 and not wp.feasible       # 16 cores, 4 per replica
    per_replica = wp.capacity_fps / wp.replicas
    assert wp.unplaced_replicas == math.ceil((500 * 1.1 - wp.capacity_fps) / per_replica - 1e-9) > 0
    assert wp.asked_replicas == wp.replicas + wp.unplaced_replicas
    assert any("wait Pending for a node autoscaler" in r for r in wp.reasons)


def test_when_the_tee_nodes_are_gone_the_last_trustworthy_replicas_are_still_asked_for():
    tdx, plain = node_class("tdx", tees=[TDX], cores=64), node_class("plain", cores=128)
    first, state = plan(snapshot([tdx, plain], [node("t1", tdx), node("p1", plain)], [workload(fps=30, tees=["tdx"])]))
    assert first.workloads["default/w"].unplaced_replicas == 0
    before = first.workloads["default/w"].replicas
    assert state.trusted["default/w"][1] == before > 0
    gone, state = plan(snapshot([tdx, plain], [node("p1", plain)], [workload(fps=30, tees=["tdx"])], now_s=15.0,
                                state=state))
    wp = gone.workloads["default/w"]
    assert wp.replicas == 0 and wp.unplaced_replicas == before and wp.asked_replicas == before
    assert state.trusted["default/w"][1] == before          # kept while the class is gone


def test_a_cluster_with_room_asks_for_exactly_what_it_places():
    cls = node_class("c", cores=128)
    result, _ = plan(snapshot([cls], [node("n1", cls), node("n2", cls)], [workload(fps=100)],
                              state=PolicyState()))
    wp = result.workloads["default/w"]
    assert wp.feasible and wp.unplaced_replicas == 0 and wp.asked_replicas == wp.replicas > 0
