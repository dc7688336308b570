"""The re-plan rule: plans only when the answer can change, and skipped calls never change the
demand a plan is sized for."""

from dataclasses import replace

import numpy as np
import pytest

from wattwise.models.planner import plan as make_plan
from wattwise.models.scoring import count_by_class, node_costs, scores_from_costs, short_classes
from wattwise.models.scenario import load_scenario
from wattwise.models.snapshot import PolicyState
from wattwise.simulations.cluster_model import ON, WAKING
from wattwise.simulations.policies.wattwise_policy import WattwisePolicy
from wattwise.models.replan import DemandWindow, PlanMark, ReplanSettings, needs_replan
from wattwise.simulations.run import simulate

from .conftest import SCENARIO

GATE = ReplanSettings(min_interval_s=30, max_interval_s=1800, demand_change=0.05, carbon_change=0.05)


def _mark(sized=100.0, capacity=120.0, replicas=6, floor=1, weights=(1.0, 1.0)):
    return PlanMark(now_s=0.0, sized_fps=np.array([sized]), capacity_fps=np.array([capacity]),
                    replicas=np.array([float(replicas)]), headroom=np.array([0.1]), floor=np.array([float(floor)]),
                    weights=np.array(weights))


@pytest.mark.parametrize("now_s, fps, weights, waiting, expected", [
    (10, 200.0, (1.0, 1.0), True, (False, "too soon")),
    (1800, 100.0, (1.0, 1.0), False, (True, "max-interval")),
    (60, 100.0, (1.0, 1.0), True, (True, "pending")),
    (60, 115.0, (1.0, 1.0), False, (True, "demand-up")),         # within 5% of the capacity
    (60, 112.0, (1.0, 1.0), False, (False, "unchanged")),
    (60, 85.0, (1.0, 1.0), False, (True, "demand-down")),        # 85 x 1.1 fits in 5 replicas (100 fps)
    (60, 95.0, (1.0, 1.0), False, (False, "unchanged")),         # less than 10% down
    (60, 100.0, (1.0, 1.06), False, (True, "carbon")),
])
def test_rule(now_s, fps, weights, waiting, expected):
    assert needs_replan(_mark(), now_s, np.array([fps]), np.array(weights), waiting, GATE) == expected


def test_no_replan_when_fewer_replicas_could_not_serve():
    # 40% down, but 60 x 1.1 = 66 fps does not fit in one replica fewer (60 fps): same plan
    assert needs_replan(_mark(sized=100, capacity=120, replicas=2), 60, np.array([60.0]), np.array([1.0, 1.0]),
                        False, GATE) == (False, "unchanged")
    # at the floor already
    assert needs_replan(_mark(replicas=1, floor=1), 60, np.array([10.0]), np.array([1.0, 1.0]),
                        False, GATE) == (False, "unchanged")


def test_window_holds_the_peak_and_feeds_the_planner(tmp_path):
    window = DemandWindow(["a", "b"], window_s=300, step_s=60)
    for t, a in [(0, 50.0), (60, 90.0), (120, 40.0), (180, 40.0)]:
        window.add(t, np.array([a, 1.0]))
    assert window.peak(240, np.array([30.0, 1.0]))[0] == 90.0     # held by the sample at 60 s
    assert window.peak(400, np.array([30.0, 1.0]))[0] == 40.0     # 60 s has left the window
    history = window.history(300)
    assert [t for t, _ in history["a"]] == [0, 60, 120, 180]

    # the planner sizes for the window's peak although it was not called at 60 s
    base = load_scenario(SCENARIO).snapshot
    key = base.workloads[0].key
    snap = replace(base, now_s=240.0, state=PolicyState(demand_history={key: ((60.0, 2000.0), (120.0, 10.0))}))
    plan, _ = make_plan(snap)
    assert plan.workloads[key].demand_fps == 2000.0   # now: 720 fps


class KeepsContext(WattwisePolicy):
    def on_tick(self, ctx):
        super().on_tick(ctx)
        self.last_ctx = ctx


@pytest.fixture(scope="module")
def wattwise_run():
    policies = {}

    def factory(name, scenario, timing):
        policies[name] = KeepsContext(scenario, timing)
        return policies[name]

    result = simulate(SCENARIO, ["wattwise"], days=1 / 24, step_s=15, seed=1, policy_factory=factory)
    return result, policies["wattwise"]


def test_replans_are_counted_with_reasons(wattwise_run):
    result, policy = wattwise_run
    s = result.summary["policies"]["wattwise"]
    assert s["planner_calls"] == sum(s["replan_reasons"].values()) >= 1
    assert s["planner_calls"] < 240 // 2          # 240 steps of 15 s: far fewer plans than refresher intervals


def test_placement_scores_are_the_cores(wattwise_run):
    """The extender's scores as the core computes them for the same candidates."""
    _, policy = wattwise_run
    ctx = policy.last_ctx
    cm, st = ctx.cm, ctx.st
    for w, wl in enumerate(cm.snapshot.workloads):
        candidates = np.flatnonzero(cm.eligible[w] & (st.node_state == ON))
        if not len(candidates):
            continue
        powered = (st.node_state == ON) | (st.node_state == WAKING)
        now = replace(policy.snapshot, nodes=tuple(replace(n, powered_on=bool(powered[i]))
                                                   for i, n in enumerate(policy.snapshot.nodes)))
        wp = policy.plan.workloads[wl.key]
        running = {cm.node_names[n]: int(st.ready[w, n] + st.booting[w, n])
                   for n in np.flatnonzero(st.ready[w] + st.booting[w])}
        class_of = {cm.node_names[n]: cm.class_names[cm.class_idx[n]] for n in range(cm.n_nodes)}
        shorts = short_classes(wp.by_class, count_by_class(running, class_of))
        costs = node_costs(now, wl, [cm.node_names[n] for n in candidates], active_nodes=frozenset(policy.plan.active_nodes),
                           planned_nodes=frozenset(wp.by_node), short_classes=shorts)
        expected = scores_from_costs(costs)
        got = policy.extender_scores(ctx, w, candidates)
        assert {cm.node_names[n]: int(s) for n, s in zip(candidates, got)} == expected


def test_parallel_runs_give_the_same_result():
    a = simulate(SCENARIO, ["default", "wattwise"], days=0.25 / 24, step_s=15, seed=2)
    b = simulate(SCENARIO, ["default", "wattwise"], days=0.25 / 24, step_s=15, seed=2, workers=2)
    assert a.summary["policies"] == b.summary["policies"]
