"""Placement answers (models.placement): verdicts and scores from the core's eligibility and
scoring, a memo bounded in entries, and the rules the doors share (short classes, one score per
distinct cost)."""

from __future__ import annotations

import random
from dataclasses import replace

from wattwise.models.eligibility import hard_reason, soft_reason
from wattwise.models.placement import NodeEntry, Outcome, Placement
from wattwise.models.planner import plan as make_plan
from wattwise.models.pod_intent import PodKind, pod_intent
from wattwise.models.scoring import NodeCost, candidate_scores, node_costs, scores_from_costs, short_classes

from .builders import TDX, node, node_class, snapshot, workload

TDX_CLASS = node_class("tdx", tees=[TDX])
PLAIN = node_class("plain", cores=16)


def cluster(n: int = 40):
    nodes = [node(f"t{i}", TDX_CLASS, zone=f"z{i % 3}", ready=i % 5 != 0, reserved_cpu_m=31_000 if i % 7 == 0 else 0)
             for i in range(n)]
    nodes += [node(f"p{i}", PLAIN, zone=f"z{i % 3}") for i in range(n)]
    snap = snapshot([TDX_CLASS, PLAIN], nodes, [workload("cams", fps=300.0, tees=[TDX])])
    plan, _ = make_plan(snap)
    entries = {n.name: NodeEntry(n.name, "1", n, snap.node_classes[n.node_class]) for n in snap.nodes}
    return snap, plan, entries


def managed(placement: Placement):
    pod = {"metadata": {"namespace": "default", "labels": {"wattwise.io/workload": "cams"}}, "spec": {}}
    intent = pod_intent(pod, placement.workloads)
    assert intent.kind is PodKind.MANAGED
    return intent


def test_verdicts_are_the_cores_eligibility():
    snap, plan, entries = cluster()
    placement = Placement(snap, plan)
    intent = managed(placement)
    names = list(entries) + ["ghost"]
    d = placement.verdicts(intent, names, entries)
    w = intent.workload
    for name, entry in entries.items():
        cls = snap.node_classes[entry.node.node_class]
        hard = hard_reason(w, entry.node, cls, snap.model(w, cls))
        soft = None if hard else soft_reason(w, entry.node)
        if hard:
            assert d.unresolvable[name] == hard
        elif soft:
            assert d.failed[name] == soft
        else:
            assert name in d.passed
    assert "ghost" in d.unresolvable
    assert sum(d.tally.values()) == len(names)
    assert d.tally[(Outcome.UNRESOLVABLE, "unknown_node")] == 1


def test_the_memo_stays_within_its_entries_and_answers_alike():
    snap, plan, entries = cluster()
    small = Placement(snap, plan, max_entries=len(entries) + 10)
    roomy = Placement(snap, plan)
    intent = managed(roomy)
    tee_only = pod_intent({"metadata": {}, "spec": {"runtimeClassName": "kata-qemu-tdx"}}, roomy.workloads)
    names = list(entries)
    rng = random.Random(1)
    for _ in range(20):
        rng.shuffle(names)
        for placement in (small, roomy):
            assert placement.memo_entries <= max(placement.max_entries, len(entries))
        for pod in (intent, tee_only):
            assert small.verdicts(pod, names, entries) == roomy.verdicts(pod, names, entries)
        assert small.scores(intent, names, entries, {}) == roomy.scores(intent, names, entries, {})
        assert small.memo_entries <= small.max_entries
    assert roomy.memo_entries > small.max_entries   # the roomy one kept every table


def test_a_changed_node_is_answered_afresh_and_the_rest_reused():
    snap, plan, entries = cluster()
    placement = Placement(snap, plan)
    intent = managed(placement)
    names = list(entries)
    before = placement.verdicts(intent, names, entries)
    assert "t1" in before.passed
    changed = dict(entries)
    old = entries["t1"]
    changed["t1"] = NodeEntry("t1", "2", replace(old.node, tee_ready=frozenset()), old.node_class)
    after = placement.verdicts(intent, names, changed)
    assert "not ready" in after.unresolvable["t1"]
    assert {n: v for n, v in after.unresolvable.items() if n != "t1"} == before.unresolvable


def test_scores_are_scores_from_costs_with_the_short_classes():
    snap, plan, entries = cluster()
    placement = Placement(snap, plan)
    intent = managed(placement)
    w = intent.workload
    wp = plan.workloads[w.key]
    names = list(entries)
    for running in (None, {}, dict(wp.by_node)):
        shorts = placement.short_classes(w.key, running)
        allowed = [n for n in names if n not in placement.verdicts(intent, names, entries).unresolvable]
        planned = frozenset(n for n, c in wp.by_node.items() if c > 0)
        expected = scores_from_costs(node_costs(snap, w, allowed, active_nodes=frozenset(plan.active_nodes),
                                                planned_nodes=planned, short_classes=shorts))
        assert placement.scores(intent, names, entries, running) == {n: expected.get(n, 0) for n in names}
    assert placement.short_classes(w.key, None) == frozenset()
    assert placement.short_classes(w.key, {}) == frozenset(c for c, k in wp.by_class.items() if k > 0)


def test_short_classes_and_one_score_per_distinct_cost():
    assert short_classes({"a": 2, "b": 1, "c": 0}, {"a": 1, "b": 1}) == frozenset({"a"})
    costs = [NodeCost(f"n{i}", 1.0, c, False) for i, c in enumerate([2.0, 1.0, 2.0, 10.0, 1.5])]
    assert candidate_scores([c.weighted_cost for c in costs] + [None]) == [*scores_from_costs(costs).values(), 0]
    assert candidate_scores([None, None]) == [0, 0] and candidate_scores([]) == []


def test_an_unmanaged_pod_asking_for_a_tee_by_annotation_or_label_gets_the_tee_check():
    """Not only a CoCo runtime class: `wattwise.io/tee` on a pod WattWise does not manage (no
    workload label, a custom runtime class or none) keeps it off nodes without that TEE."""
    snap, plan, entries = cluster()
    placement = Placement(snap, plan)
    names = list(entries)
    for meta in ({"annotations": {"wattwise.io/tee": "tdx"}}, {"labels": {"wattwise.io/tee": "tdx"}}):
        for runtime in ({}, {"runtimeClassName": "kata-qemu-tdx-custom"}):
            pod = {"metadata": {"namespace": "shop", **meta}, "spec": runtime}
            intent = pod_intent(pod, placement.workloads)
            assert intent.kind is PodKind.TEE_ONLY and intent.requirement.required, (meta, runtime)
            passed = placement.verdicts(intent, names, entries).passed
            assert passed and all(n.startswith("t") and entries[n].node.tee_ready for n in passed), passed
    unreadable = {"metadata": {"annotations": {"wattwise.io/tee": "tdx;;"}}, "spec": {}}
    assert pod_intent(unreadable, placement.workloads).kind is PodKind.INVALID
    plain = {"metadata": {"annotations": {"wattwise.io/tee": "none"}}, "spec": {}}
    assert pod_intent(plain, placement.workloads).kind is PodKind.PASSTHROUGH


def test_a_node_in_a_zone_the_plan_never_weighed_counts_as_missing_carbon_not_as_average():
    """A node that joined after the plan (a node autoscaler's), in a zone no reading covers, is
    weighed at the conservative default intensity: under the carbon objective it scores below a
    known node on a 400 g/kWh grid, never above it."""
    cls = node_class("c", cores=64)
    snap = snapshot([cls], [node("a1", cls, zone="z1"), node("b1", cls, zone="z2")],
                    [workload("cams", fps=50.0)], carbon={"z1": 400.0, "z2": 100.0}, objective="carbon")
    plan, _ = make_plan(snap)
    placement = Placement(snap, plan)
    assert snap.settings.carbon_default_g_per_kwh > 400.0
    newcomer = node("n-new", cls, zone="eu-somewhere-9a")            # not in the snapshot
    entries = {n.name: NodeEntry(n.name, "1", n, cls) for n in (*snap.nodes, newcomer)}
    scores = placement.scores(managed(placement), ["a1", "n-new"], entries)
    assert scores["n-new"] < scores["a1"], scores
    same_zone = replace(newcomer, zone="z1")                          # a newcomer in a known zone: as a1
    entries["n-new"] = NodeEntry("n-new", "2", same_zone, cls)
    assert Placement(snap, plan).scores(managed(placement), ["a1", "n-new"], entries) == {"a1": 10, "n-new": 10}
