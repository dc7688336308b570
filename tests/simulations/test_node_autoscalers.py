"""cluster-autoscaler's and Karpenter's rules on a small hand-made cluster: the pods are bound by
hand, the clock is set by hand, and the autoscaler is called as the engine calls it."""

from types import SimpleNamespace

import numpy as np
import pytest

from wattwise.models.scenario import load_scenario
from wattwise.simulations.cluster_autoscaler import ClusterAutoscaler
from wattwise.simulations.karpenter import Karpenter, node_prices
from wattwise.simulations.cluster_model import OFF, ON, SLEEPING, WAKING, build_cluster_model
from wattwise.simulations.cluster_state import ClusterState
from wattwise.simulations.context import SimContext
from wattwise.simulations.timing import ControlTiming

from .helpers import write_scenario

# four 10-core nodes (9.5 allocatable), the fourth powered down; pods of 2 cores; a "wide" workload
# of 9 cores fits only on an empty node; two small 4-core nodes for Karpenter's replacements
SPEC = {
    "name": "autoscalers",
    "objective": "energy",
    "zones": {"z": {"carbon_g_per_kwh": 200}},
    "node_classes": {
        "big": {"cores": 10, "memory_gib": 64, "power": {"idle_w": 100, "max_w": 300, "sleep_w": 5},
                "startup_s": 5, "startup_tee_s": 5, "wake_s": 60},
        "small": {"cores": 4, "memory_gib": 16, "power": {"idle_w": 40, "max_w": 100, "sleep_w": 2},
                  "startup_s": 5, "startup_tee_s": 5, "wake_s": 60},
    },
    "nodes": [{"name_prefix": "a", "class": "big", "zone": "z", "count": 4},
              {"name_prefix": "s", "class": "small", "zone": "z", "count": 2}],
    "workloads": [
        {"name": "cam", "model": "classifier-bf16", "streams": 1, "fps_per_stream": 5, "cpu": "2", "memory": "1Gi",
         "min_replicas": 0, "max_replicas": 20},
        {"name": "wide", "model": "classifier-bf16", "streams": 1, "fps_per_stream": 5, "cpu": "9", "memory": "1Gi",
         "min_replicas": 0, "max_replicas": 2},
    ],
    "simulation": {"days": 1, "step_s": 60},
}
A, B, C, D, S1, S2 = range(6)
CAM, WIDE = 0, 1


@pytest.fixture
def ctx(tmp_path):
    cm = build_cluster_model(load_scenario(write_scenario(tmp_path, SPEC)).snapshot)
    st = ClusterState(cm, powered_on=np.array([True, True, True, False, False, False]))
    return SimContext(cm=cm, st=st, inputs=SimpleNamespace(step_s=60.0), timing=ControlTiming(),
                      rng=np.random.default_rng(0))


def bind(ctx, w, n, k):
    for _ in range(k):
        ctx.st.add_pod(w, n, 0.0, instant=True)


def at(ctx, t):
    ctx.now_s = float(t)
    ctx.st.promote(ctx.now_s)
    ctx.st.advance_nodes(ctx.now_s)
    return ctx


def test_unneeded_below_half_and_only_if_the_pods_fit_elsewhere(ctx):
    bind(ctx, CAM, A, 2)     # 4 of 9.5 cores: 42%
    bind(ctx, CAM, B, 3)     # 6 of 9.5 cores: 63%, room for one more
    bind(ctx, CAM, C, 2)     # 42%, but once A's pods are counted on B and C, C's fit nowhere
    ca = ClusterAutoscaler(ctx)
    util = ca.utilization(ctx)
    assert util[A] == pytest.approx(4 / 9.5) and util[B] == pytest.approx(6 / 9.5)   # requests / allocatable
    going = ca.update_unneeded(at(ctx, 0))
    assert going.tolist()[:3] == [True, False, False]
    # a node at or above the threshold is never unneeded, even if its pods could move
    ca.settings = type(ca.settings)(utilization_threshold=0.4)
    ca.unneeded_since_s[:] = np.nan
    assert not ca.update_unneeded(at(ctx, 0))[:3].any()


def test_removed_after_ten_unneeded_minutes_then_powered_down(ctx):
    bind(ctx, CAM, A, 2)
    bind(ctx, CAM, B, 3)
    bind(ctx, CAM, C, 3)     # B and C have room for one more pod each: A's two fit elsewhere
    ca = ClusterAutoscaler(ctx)
    for t in range(0, 600, 60):
        ca.step(at(ctx, t))
        assert ctx.st.node_state[A] == ON and not ctx.st.cordoned[A], t
    assert ca.unneeded_since_s[A] == 0.0
    ca.step(at(ctx, 600))
    st = ctx.st
    assert st.cordoned[A] and st.pending[CAM] == 2 and st.terminating[CAM, A] == 2   # evicted, still serving
    assert st.capacity_fps[CAM] == pytest.approx(8 * ctx.cm.cap_fps[CAM, A])
    ca.step(at(ctx, 660))                      # the evicted pods' grace is over: the node goes to sleep
    assert st.node_state[A] == SLEEPING and st.pods_on()[A] == 0
    assert ca.removals == 1


def test_a_node_that_stops_being_unneeded_starts_its_ten_minutes_again(ctx):
    bind(ctx, CAM, A, 2)
    bind(ctx, CAM, B, 3)
    bind(ctx, CAM, C, 3)
    ca = ClusterAutoscaler(ctx)
    ca.step(at(ctx, 0))
    bind(ctx, CAM, A, 1)                       # 6 of 9.5 cores: needed
    ca.step(at(ctx, 300))
    assert np.isnan(ca.unneeded_since_s[A])
    ctx.st.remove_pod(CAM, A, 360)
    ca.step(at(ctx, 360))
    ca.step(at(ctx, 900))
    assert ctx.st.node_state[A] == ON          # 9 minutes unneeded since 360 s
    ca.step(at(ctx, 960))
    assert ctx.st.cordoned[A]


def test_no_scale_down_within_ten_minutes_of_a_scale_up(ctx):
    bind(ctx, CAM, A, 2)
    bind(ctx, CAM, B, 3)
    bind(ctx, CAM, C, 3)
    ca = ClusterAutoscaler(ctx)
    ca.step(at(ctx, 0))
    assert ca.unneeded_since_s[A] == 0.0
    ctx.st.pending[WIDE] = 1                   # fits on no node that is up: a node is added
    ca.step(at(ctx, 300))
    assert ctx.st.node_state[D] == WAKING and ca.last_scale_up_s == 300
    ctx.st.pending[WIDE] = 0
    for t in (600, 840):                       # A has been unneeded 10 minutes, but a scale-up was at 300 s
        ca.step(at(ctx, t))
        assert not ctx.st.cordoned[A], t
    ca.step(at(ctx, 900))
    assert ctx.st.cordoned[A]


def test_scale_up_only_for_pods_the_starting_nodes_will_not_take(ctx):
    bind(ctx, CAM, A, 4)
    bind(ctx, CAM, B, 4)
    bind(ctx, CAM, C, 4)
    ca = ClusterAutoscaler(ctx)
    ctx.st.pending[CAM] = 3                    # no room left on A-C: one new node holds all three
    ca.step(at(ctx, 0))
    assert ca.scale_ups == 1 and ctx.st.node_state[D] == WAKING   # least waste: one big node, not two small
    ca.step(at(ctx, 30))                       # still pending, but the starting node will take them
    assert ca.scale_ups == 1 and (ctx.st.node_state == WAKING).sum() == 1
    at(ctx, 60)                                # the node is up (wake_s 60) and kube-scheduler binds them
    ctx.st.pending[CAM] = 0
    bind(ctx, CAM, D, 3)
    ca.step(ctx)
    assert ca.scale_ups == 1 and (ctx.st.node_state == WAKING).sum() == 0


def test_karpenter_deletes_an_empty_node_after_consolidate_after(ctx):
    bind(ctx, CAM, A, 4)
    bind(ctx, CAM, B, 4)
    k = Karpenter(ctx)
    k.step(at(ctx, 30))
    assert ctx.st.node_state[C] == ON          # empty, but consolidateAfter (1 minute) has not passed
    k.step(at(ctx, 60))
    assert ctx.st.node_state[C] == SLEEPING


def test_karpenter_moves_pods_that_fit_elsewhere_and_replaces_with_a_cheaper_node(ctx):
    prices = node_prices(ctx.cm)
    assert prices[S1] < prices[A]
    bind(ctx, CAM, A, 1)
    bind(ctx, CAM, B, 3)
    bind(ctx, CAM, C, 4)
    k = Karpenter(ctx)
    k.step(at(ctx, 60))                        # A's one pod fits on B (room for one): A is deleted
    assert ctx.st.cordoned[A] and ctx.st.pending[CAM] == 1
    ctx.st.pending[CAM] = 0
    ctx.st.add_pod(CAM, B, 60)
    k.step(at(ctx, 120))
    assert ctx.st.node_state[A] == SLEEPING
    # C's four pods fit nowhere else; a small node holds one, not four: C stays
    k.step(at(ctx, 240))
    assert ctx.st.node_state[C] == ON and not ctx.st.cordoned[C]
    for _ in range(3):
        ctx.st.remove_pod(CAM, C, 240)
    k.step(at(ctx, 300))                       # one pod left: a small node (cheaper) replaces C
    assert ctx.st.cordoned[C] and k.replacements == 1
    small = int(np.flatnonzero(ctx.st.node_state == WAKING)[0])
    assert small in (S1, S2)
    k.step(at(ctx, 330))
    assert ctx.st.cordoned[C] and ctx.st.pods_on()[C] == 1   # drained only once the replacement is up
    k.step(at(ctx, 360))
    assert ctx.st.pending[CAM] == 1 and ctx.st.terminating[CAM, C] == 1


def test_karpenter_launches_the_cheapest_node_that_holds_the_pending_pods(ctx):
    for n in (A, B, C):
        bind(ctx, CAM, n, 4)
    ctx.st.pending[CAM] = 1
    k = Karpenter(ctx)
    k.step(at(ctx, 0))
    assert ctx.st.node_state[S1] == WAKING or ctx.st.node_state[S2] == WAKING
    assert ctx.st.node_state[D] == OFF
    ctx.st.pending[WIDE] = 1                   # 9 cores: only a big node holds it
    k.step(at(ctx, 10))
    assert ctx.st.node_state[D] == WAKING
