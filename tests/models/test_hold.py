"""Holding replicas when demand is not trustworthy: one rule, `models.planner.hold_untrusted`.
Never scale below what the last trustworthy data says the SLA needs."""

from dataclasses import replace

from hypothesis import HealthCheck, given, settings, strategies as st

from wattwise.models.planner import PlanningDemand, hold_untrusted, plan
from wattwise.models.snapshot import PolicyState

from tests.models.builders import node, node_class, snapshot, workload

CLS = node_class("c", amx=True, cores=64)
NODES = [node("n1", CLS), node("n2", CLS), node("n3", CLS)]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.floats(10, 900), st.floats(0, 2000), st.integers(0, 3), st.integers(1, 50))
def test_untrusted_demand_never_plans_below_the_last_trustworthy_plan(good_fps, untrusted_fps, min_r, max_r):
    first, state = plan(snapshot([CLS], NODES, [workload(fps=good_fps, min_r=min(min_r, max_r), max_r=max_r)]))
    trusted = first.replicas("default/w")
    later = snapshot([CLS], NODES, [workload(fps=untrusted_fps, trustworthy=False, min_r=min(min_r, max_r), max_r=max_r)],
                     now_s=3600.0, state=state)               # long after: the window holds nothing
    wp = plan(later)[0].workloads["default/w"]
    assert wp.held and not wp.no_trusted_demand
    assert wp.replicas >= trusted
    assert wp.demand_fps >= good_fps


def test_no_trustworthy_demand_ever_is_said_so():
    wp = plan(snapshot([CLS], NODES, [workload(fps=0, trustworthy=False)]))[0].workloads["default/w"]
    assert wp.held and wp.no_trusted_demand
    assert "never trustworthy" in wp.reasons[0]


def test_the_rule_as_a_value():
    w = workload(fps=0, trustworthy=False, min_r=1)
    state = PolicyState(trusted={"default/w": (300.0, 4)}, placements={"default/w": {"n1": 2}})
    d = hold_untrusted(w, state, ((10.0, 500.0),))
    assert d == PlanningDemand(fps=500.0, floor=4, held=True, history=((10.0, 500.0),), note=d.note,
                               trusted_before=True)
    assert "never fewer than 4 replicas" in d.note
    assert hold_untrusted(replace(w, max_replicas=3), state, ()).floor == 3       # max_replicas still caps it
    assert not hold_untrusted(w, PolicyState(), ()).trusted_before


def test_trusted_memory_forgets_workloads_that_left():
    a, b = workload("a", fps=100), workload("b", fps=100)
    _, state = plan(snapshot([CLS], NODES, [a, b]))
    assert set(state.trusted) == {"default/a", "default/b"}
    _, state = plan(snapshot([CLS], NODES, [a], now_s=15.0, state=state))
    assert set(state.trusted) == {"default/a"}


def test_the_hold_remembers_the_demand_planned_not_the_last_reading():
    """Demand fell to 100 fps while the scale-down window still planned for 500: a hold after the
    window has passed plans for the 500 the last trustworthy plan was made for."""
    _, state = plan(snapshot([CLS], NODES, [workload(fps=500)]))
    last, state = plan(snapshot([CLS], NODES, [workload(fps=100)], now_s=60.0, state=state))
    assert last.workloads["default/w"].demand_fps == 500.0 and state.trusted["default/w"][0] == 500.0
    held = plan(snapshot([CLS], NODES, [workload(fps=0, trustworthy=False)], now_s=3600.0, state=state))[0]
    wp = held.workloads["default/w"]
    assert wp.held and wp.demand_fps == 500.0 and wp.replicas >= last.workloads["default/w"].replicas
