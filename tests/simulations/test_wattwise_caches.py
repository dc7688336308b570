"""The wattwise door's caches give what asking the core afresh gives: after nodes change power
state, pods come and go (the classes a plan is short of change) and the plan changes."""

import numpy as np
import pytest

from wattwise.models.rollout import desired_replicas
from wattwise.models.scoring import node_costs
from wattwise.simulations.cluster_model import OFF, ON, WAKING, PoweredNodes
from wattwise.simulations.policies.wattwise_policy import WattwisePolicy
from wattwise.simulations.run import simulate

from .conftest import SCENARIO


class KeepsContext(WattwisePolicy):
    def on_tick(self, ctx):
        super().on_tick(ctx)
        self.last_ctx = ctx


@pytest.fixture
def policy():
    kept = {}

    def factory(name, scenario, timing):
        kept[name] = KeepsContext(scenario, timing)
        return kept[name]

    simulate(SCENARIO, ["wattwise"], days=0.5 / 24, step_s=15, seed=3, policy_factory=factory)
    return kept["wattwise"]


def _fresh_costs(policy, ctx, w):
    """node_costs for every allowed node, asked one by one with the nodes' power state now."""
    cm, st = ctx.cm, ctx.st
    powered = (st.node_state == ON) | (st.node_state == WAKING)
    by_name = {n.name: n for n in cm.powered_nodes.nodes(powered)}
    snapshot = policy.snapshot
    wl = cm.snapshot.workloads[w]
    allowed = [cm.node_names[n] for n in np.flatnonzero(cm.eligible[w])]
    out = np.full(cm.n_nodes, np.inf)
    for c in node_costs(snapshot, wl, allowed, active_nodes=frozenset(policy.plan.active_nodes),
                        planned_nodes=frozenset(policy.plan.workloads[wl.key].by_node),
                        short_classes=policy._short_classes(ctx, w), by_name=by_name):
        out[cm.node_names.index(c.node)] = c.weighted_cost
    return out


def _check_costs(policy, ctx):
    for w in range(ctx.cm.n_workloads):
        np.testing.assert_array_equal(policy._costs(ctx, w), _fresh_costs(policy, ctx, w))


def test_costs_follow_power_state_pods_and_plan(policy):
    ctx = policy.last_ctx
    cm, st = ctx.cm, ctx.st
    _check_costs(policy, ctx)
    # nodes go to sleep and wake: a sleeping node costs its wake, a waking one no longer does
    on = np.flatnonzero(st.node_state == ON)
    st.node_state[on[::2]] = OFF
    _check_costs(policy, ctx)
    st.node_state[on[::4]] = WAKING
    _check_costs(policy, ctx)
    # pods come and go: the classes the plan is short of change
    for w in range(cm.n_workloads):
        placed = np.flatnonzero(st.ready[w])
        if len(placed):
            st.ready[w, placed] = 0
    _check_costs(policy, ctx)
    # a new plan
    version = policy.plan_version
    policy.refresh(ctx, force=True)
    assert policy.plan_version == version + 1
    _check_costs(policy, ctx)


def test_metric_follows_pods_and_plan(policy):
    ctx = policy.last_ctx
    cm, st = ctx.cm, ctx.st

    def fresh():
        def by_node(row):
            return {int(n): int(row[n]) for n in np.flatnonzero(row)}
        pods = st.ready + st.booting
        return np.array([desired_replicas(int(policy.planned[w].sum()), by_node(policy.planned[w]), by_node(pods[w]),
                                          by_node(st.ready[w])) for w in range(cm.n_workloads)], dtype=float)

    np.testing.assert_array_equal(policy.metric(ctx)[0], fresh())
    # planned replicas become starting ones elsewhere: make before break asks for more
    w = int(np.argmax(policy.planned.sum(axis=1)))
    n = int(np.flatnonzero(cm.eligible[w] & (policy.planned[w] == 0))[0])
    st.add_pod(w, n, ctx.now_s)
    for m in np.flatnonzero(st.ready[w] & (policy.planned[w] > 0)):
        st.ready[w, m] = 0
    st.version += 1
    np.testing.assert_array_equal(policy.metric(ctx)[0], fresh())
    policy.refresh(ctx, force=True)
    np.testing.assert_array_equal(policy.metric(ctx)[0], fresh())


def test_powered_nodes_are_reused_until_power_changes():
    from wattwise.models.scenario import load_scenario

    nodes = load_scenario(SCENARIO).snapshot.nodes
    view = PoweredNodes(nodes)
    on = np.ones(len(nodes), bool)
    first = view.nodes(on)
    assert [n.name for n in first] == sorted(n.name for n in nodes)
    assert view.nodes(on.copy()) is first
    on[0] = False
    second = view.nodes(on)
    assert second is not first
    assert {n.name: n.powered_on for n in second} == {n.name: bool(p) for n, p in zip(nodes, on)}
    on[0] = True
    assert view.nodes(on) == first


def test_metric_asks_again_each_workload_whose_pods_or_plan_moved(policy):
    """The metric is worked out again only for workloads whose pods or part of the plan moved:
    each kind of move, on one workload, changes its answer as asking afresh does."""
    ctx = policy.last_ctx
    cm, st = ctx.cm, ctx.st

    def fresh():
        def by_node(row):
            return {int(n): int(row[n]) for n in np.flatnonzero(row)}
        return np.array([desired_replicas(int(policy.plan_replicas[w]), by_node(policy.planned[w]),
                                          by_node(st.ready[w] + st.booting[w]), by_node(st.ready[w]))
                         for w in range(cm.n_workloads)], dtype=float)

    def check_moved(before):
        after = policy.metric(ctx)[0]
        np.testing.assert_array_equal(after, fresh())
        assert after[w] != before[w]
        return after

    answer = policy.metric(ctx)[0]
    np.testing.assert_array_equal(answer, fresh())
    w = int(np.argmax(policy.planned.sum(axis=1)))
    off_plan = np.flatnonzero(cm.eligible[w] & (policy.planned[w] == 0))
    # pods move, the cluster's version untouched: pods start off the plan (more than the plan's
    # count and its missing slots together, so the answer must change), the planned ones are not ready
    booting, ready = st.booting[w].copy(), st.ready[w].copy()
    st.booting[w, off_plan[0]] += int(policy.plan_replicas[w]) + int(policy.planned[w].sum()) + 1
    st.booting[w] += st.ready[w] * (policy.planned[w] > 0)
    st.ready[w] *= policy.planned[w] == 0
    answer = check_moved(answer)
    # ... and back
    st.booting[w], st.ready[w] = booting, ready
    answer = check_moved(answer)
    # the plan puts replicas of w on another node (more than it plans and runs now, so the answer must change)
    pods = int((st.ready[w] + st.booting[w]).sum())
    policy.planned[w, off_plan[1]] += int(policy.plan_replicas[w]) + int(policy.planned[w].sum()) + 3 * pods + 5
    policy._planned_by_node[w] = {int(n): int(policy.planned[w, n]) for n in np.flatnonzero(policy.planned[w])}
    answer = check_moved(answer)
    # the plan asks for far more of w
    policy.plan_replicas[w] += int(answer[w]) + 100
    check_moved(answer)
