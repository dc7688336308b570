"""`PlanCache`: successive plans of one caller share node groups and pair verdicts while the
cluster stands still, and a plan is the same with or without it, whatever changed in between."""

from dataclasses import replace

from wattwise.models.planner import PlanCache, plan, planning_problem
from wattwise.models.tee import Confidentiality
from wattwise.models.workload import Demand

from .builders import TDX, node, node_class, snapshot, workload

CPU = node_class("cpu", amx=True)
TEE = node_class("tdx", tees=(TDX,))


def _snap(demand=(300.0, 120.0), on=(True,) * 6, tees=None, **kw):
    nodes = [node(f"c{i}", CPU, on=on[i]) for i in range(3)] + [node(f"t{i}", TEE, on=on[3 + i]) for i in range(3)]
    return snapshot([CPU, TEE], nodes, [workload("a", fps=demand[0]), workload("b", fps=demand[1], tees=tees)],
                    exact_below_nodes=0, **kw)


def _same(a, b):
    assert a[0].workloads == b[0].workloads and a[0].active_nodes == b[0].active_nodes
    assert a[0].objective_value == b[0].objective_value and a[1] == b[1]


def test_plans_with_and_without_the_cache_agree_as_the_cluster_changes():
    cache = PlanCache()
    first = _snap()
    steps = [first,
             replace(first, workloads=tuple(replace(w, demand=Demand(total_fps=50.0)) for w in first.workloads)),
             _snap(on=(True, False, False, True, True, False)),                       # nodes asleep
             _snap(tees=(TDX,)),                                                      # b becomes confidential
             replace(first, nodes=tuple(replace(n, schedulable=n.name != "c0") for n in first.nodes))]
    for snap in steps:
        _same(plan(snap, cache), plan(snap))


def test_groups_are_kept_for_the_same_nodes_and_redone_when_they_change():
    cache = PlanCache()
    snap = _snap()
    groups = planning_problem(snap, cache)[0]
    busier = replace(snap, workloads=tuple(replace(w, demand=Demand(total_fps=900.0)) for w in snap.workloads))
    assert planning_problem(busier, cache)[0] is groups
    asleep = replace(snap, nodes=tuple(replace(n, powered_on=n.name != "c1") for n in snap.nodes))
    regrouped = planning_problem(asleep, cache)[0]
    assert regrouped is not groups
    assert sum(g.on_count for g in regrouped) == 5


def test_pair_verdicts_follow_the_workloads():
    cache = PlanCache()
    snap = _snap()
    groups, _, _, eligible, _ = planning_problem(snap, cache)
    b = next(w.key for w in snap.workloads if w.name == "b")
    assert {g.node_class.name: eligible[(b, g.index)] for g in groups} == {"cpu": True, "tdx": True}
    confidential = replace(snap, workloads=tuple(
        replace(w, confidentiality=Confidentiality.of_kinds((TDX,))) if w.name == "b" else w for w in snap.workloads))
    groups, _, _, eligible, _ = planning_problem(confidential, cache)
    assert {g.node_class.name: eligible[(b, g.index)] for g in groups} == {"cpu": False, "tdx": True}
