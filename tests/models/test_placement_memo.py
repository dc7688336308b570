"""The placement memo at a cluster's size: room for every workload's tables of every node, so pods
of each workload in turn (kube-scheduler's queue) find their answers until the next plan, however
many workloads the plan has, and no more than a bound."""

from __future__ import annotations

from wattwise.models import placement as placement_module
from wattwise.models.placement import (DEFAULT_MAX_ENTRIES, MAX_ENTRIES_CAP, TABLES_PER_WORKLOAD, NodeEntry, Placement,
                                       memo_entries_for)
from wattwise.models.planner import plan as make_plan
from wattwise.models.pod_intent import PodKind, pod_intent

from .builders import node, node_class, snapshot, workload

PLAIN = node_class("plain", cores=64)


def cluster(workloads: int, nodes: int):
    snap = snapshot([PLAIN], [node(f"n{i}", PLAIN, zone=f"z{i % 2}") for i in range(nodes)],
                    [workload(f"cams-{i}", fps=20.0, cpu=1) for i in range(workloads)])
    plan, _ = make_plan(snap)
    entries = {n.name: NodeEntry(n.name, "1", n, snap.node_classes[n.node_class]) for n in snap.nodes}
    return snap, plan, entries


def intents(placement: Placement, workloads: int):
    out = []
    for i in range(workloads):
        pod = {"metadata": {"namespace": "default", "labels": {"wattwise.io/workload": f"cams-{i}"}}, "spec": {}}
        intent = pod_intent(pod, placement.workloads)
        assert intent.kind is PodKind.MANAGED
        out.append(intent)
    return out


def test_the_memo_has_room_for_every_workloads_tables_of_every_node():
    assert memo_entries_for(0, 0) == DEFAULT_MAX_ENTRIES                     # small clusters: the floor
    assert memo_entries_for(1000, 200) == TABLES_PER_WORKLOAD * 1001 * 200  # the load benchmark's cluster
    assert memo_entries_for(1000, 200) >= 2 * 1000 * 200                    # filter and prioritize tables
    assert memo_entries_for(10_000, 5_000) == MAX_ENTRIES_CAP               # and a bound on memory
    snap, plan, _ = cluster(3, 4)
    assert Placement(snap, plan).max_entries == memo_entries_for(3, 4)
    assert Placement(snap, plan, max_entries=10).max_entries == 10
    assert Placement().max_entries == DEFAULT_MAX_ENTRIES


def test_pods_of_every_workload_in_turn_are_answered_from_the_memo_the_second_time(monkeypatch):
    """With a floor far below the workloads' tables, the room still comes from the plan's size:
    the second round computes nothing (with a fixed 100 answers every call missed)."""
    monkeypatch.setattr(placement_module, "DEFAULT_MAX_ENTRIES", 100)
    workloads, nodes = 12, 30
    snap, plan, entries = cluster(workloads, nodes)
    placement = Placement(snap, plan)
    assert placement.max_entries == TABLES_PER_WORKLOAD * (workloads + 1) * nodes
    names = list(entries)
    computed = []
    verdict = placement._verdict
    monkeypatch.setattr(placement, "_verdict", lambda intent, entry: computed.append(1) or verdict(intent, entry))
    costs = placement._costs
    monkeypatch.setattr(placement, "_costs", lambda *a: computed.append(len(a[1])) or costs(*a))

    first = [(placement.verdicts(i, names, entries), placement.scores(i, names, entries, {}))
             for i in intents(placement, workloads)]
    assert computed and placement.memo_entries <= placement.max_entries
    computed.clear()
    again = [(placement.verdicts(i, names, entries), placement.scores(i, names, entries, {}))
             for i in intents(placement, workloads)]
    assert computed == []                      # every answer found
    assert again == first


def test_a_memo_smaller_than_the_tables_still_answers_alike_within_its_bound():
    workloads, nodes = 12, 30
    snap, plan, entries = cluster(workloads, nodes)
    small, roomy = Placement(snap, plan, max_entries=3 * nodes), Placement(snap, plan)
    names = list(entries)
    for _ in range(2):
        for placement in (small, roomy):
            assert placement.memo_entries <= max(placement.max_entries, nodes)
        for a, b in zip(intents(small, workloads), intents(roomy, workloads)):
            assert small.verdicts(a, names, entries) == roomy.verdicts(b, names, entries)
            assert small.scores(a, names, entries, {}) == roomy.scores(b, names, entries, {})
    assert small.memo_entries <= small.max_entries < roomy.memo_entries
