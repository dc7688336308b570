"""Running replicas from the pod watch, and the plan's short classes they feed into prioritize."""

from __future__ import annotations

import copy

from tests.kube_fake import FakeKubeApi, kube_cluster, wait_until
from wattwise.kube.cluster import UNFINISHED_PODS
from wattwise.models.eligibility import hard_reason
from wattwise.models.scoring import node_costs, scores_from_costs
from wattwise.models.placement import Placement
from wattwise.scheduler import wire
from wattwise.scheduler.node_cache import StaticNodeCache
from wattwise.scheduler.service import ExtenderService
from wattwise.scheduler.replica_counts import ReplicaCounts, StaticReplicaCounts

from .helpers import recorded_node_list, recorded_pods


def bound(pod: dict, name: str, node: str, phase: str = "Running") -> dict:
    p = copy.deepcopy(pod)
    p["metadata"]["name"] = name
    p["spec"]["nodeName"] = node
    p["status"]["phase"] = phase
    return p


def test_counts_bound_unfinished_pods_by_workload_and_node():
    pods = recorded_pods()
    items = [bound(pods["managed_tdx"], "a", "de-spr-1"), bound(pods["managed_tdx"], "b", "de-spr-1"),
             bound(pods["managed_tdx"], "c", "de-spr-2", phase="Succeeded"),
             bound(pods["managed_tee_annotation"], "d", "us-h100-1"),  # label value without namespace
             pods["managed_gpu_snp"]]                                   # pending: no node yet
    api = FakeKubeApi(recorded_node_list(), pod_list={"kind": "PodList", "apiVersion": "v1",
                                                      "metadata": {"resourceVersion": "5"}, "items": items}).start()
    cluster = kube_cluster(api)
    counts = cluster.workload_pods()
    try:
        cluster.start()
        assert cluster.pods.wait_synced(10)
        assert isinstance(counts, ReplicaCounts)
        assert dict(counts.by_node("retail/checkout-cams")) == {"de-spr-1": 2}
        assert dict(counts.by_node("retail/parking-lpr")) == {"us-h100-1": 1}
        assert counts.by_node("city/city-traffic") == {}
        # every tenant's unfinished pods, no label selector: the field selector left out pod c
        assert (api.resources["pods"].seen[0].field_selector, api.pod_selectors[0]) == (UNFINISHED_PODS, "")
        assert len(cluster.pods) == 4
        # the pending pod waits unbound (the scaler's gate re-plans when that lasts); bound, it runs
        assert (counts.unbound("city/city-traffic"), counts.unbound("retail/checkout-cams")) == (1, 0)
        api.emit("pods", "DELETED", items[0])
        assert wait_until(lambda: dict(counts.by_node("retail/checkout-cams")) == {"de-spr-1": 1})
        api.emit("pods", "MODIFIED", bound(items[4], items[4]["metadata"]["name"], "us-h100-1"))
        assert wait_until(lambda: counts.unbound("city/city-traffic") == 0)
        assert dict(counts.by_node("city/city-traffic")) == {"us-h100-1": 1}
    finally:
        api.stop()          # ends the held-open watch first, so the watcher stops at once
        cluster.stop(5.0)


def test_short_classes_reach_the_core_scoring(source):
    """Classes with fewer running replicas than planned are passed to models.scoring as
    `short_classes`; the scores the door serves equal the core's with them."""
    view = source.current()
    snap = view.snapshot
    cache = StaticNodeCache.from_snapshot(snap)
    key = "retail/parking-lpr"
    plan = view.plan.workloads[key]
    class_of = {n.name: n.node_class for n in snap.nodes}
    first = sorted(plan.by_class)[0]
    running = {n: c for n, c in plan.by_node.items() if class_of[n] == first}
    pod = {"metadata": {"namespace": "retail", "labels": {"wattwise.io/workload": "parking-lpr"}}, "spec": {}}
    names = [n.name for n in snap.nodes]
    for counts, short in (({}, set(plan.by_class)), (running, set(plan.by_class) - {first})):
        assert Placement(snap, view.plan).short_classes(key, counts) == frozenset(short)
        service = ExtenderService(source, cache, replica_counts=StaticReplicaCounts({key: counts}))
        reply = wire.decode(service.prioritize(wire.encode({"Pod": pod, "NodeNames": names})).body)
        w = next(w for w in snap.workloads if w.key == key)
        allowed = [n.name for n in snap.nodes if hard_reason(w, n, snap.node_classes[n.node_class],
                                                             snap.model(w, snap.node_classes[n.node_class])) is None]
        planned = {n for n, c in plan.by_node.items() if c > 0}
        expected = scores_from_costs(node_costs(snap, w, allowed, active_nodes=frozenset(view.plan.active_nodes),
                                                planned_nodes=planned, short_classes=frozenset(short)))
        assert {s["Host"]: s["Score"] for s in reply} == {n: expected.get(n, 0) for n in names}
    assert set(plan.by_class)  # the plan places this workload at all, so `short` was non-empty above


def test_running_and_ready_per_node_for_the_scaler():
    """The scaler's PodCounts port: running and ready pods per node, None until listed."""
    from .helpers import running_pod

    pods = recorded_pods()
    items = [running_pod(pods["managed_tdx"], "a", "de-spr-1"),
             running_pod(pods["managed_tdx"], "b", "de-spr-2", ready=False),   # started, attesting
             running_pod(pods["managed_tdx"], "c", "de-spr-2")]
    api = FakeKubeApi(recorded_node_list(), pod_list={"kind": "PodList", "apiVersion": "v1",
                                                      "metadata": {"resourceVersion": "5"}, "items": items}).start()
    cluster = kube_cluster(api)
    counts = cluster.workload_pods()
    try:
        assert counts.running_and_ready("retail/checkout-cams") is None      # not listed yet: unknown
        cluster.start()
        assert cluster.pods.wait_synced(10)
        running, ready = counts.running_and_ready("retail/checkout-cams")
        assert (dict(running), dict(ready)) == ({"de-spr-1": 1, "de-spr-2": 2}, {"de-spr-1": 1, "de-spr-2": 1})
        assert counts.running_and_ready("city/city-traffic") == ({}, {})      # known: no pods
        api.emit("pods", "MODIFIED", running_pod(pods["managed_tdx"], "b", "de-spr-2"))
        assert wait_until(lambda: dict(counts.running_and_ready("retail/checkout-cams")[1])
                          == {"de-spr-1": 1, "de-spr-2": 2})
    finally:
        api.stop()
        cluster.stop(5.0)
