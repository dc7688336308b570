"""The node cache against a fake API server serving recorded Node JSON: list, watch, 410, re-list."""

from __future__ import annotations

import copy

import pytest
from kubernetes import client

from tests.kube_fake import FakeKubeApi, kube_cluster, wait_until
from wattwise.kube.cluster import KubeCluster
from wattwise.models.tee import TeeKind
from wattwise.scheduler.node_cache import KubeNodeCache
from wattwise.scheduler.server import start_extender

from .helpers import args_names, passed_names, post, recorded_node_list, recorded_pods


def nodes_by_name(node_list: dict) -> dict:
    return {n["metadata"]["name"]: n for n in node_list["items"]}


def event(kind: str, obj: dict) -> dict:
    return {"type": kind, "object": obj}


@pytest.fixture
def recorded():
    return recorded_node_list()


@pytest.fixture
def watched():
    """(cache, cluster) for a fake API: the node cache over a started cluster's node store."""
    started = []

    def make(api: FakeKubeApi) -> KubeNodeCache:
        cluster = kube_cluster(api).start()
        started.append(cluster)
        return KubeNodeCache(cluster.nodes)

    yield make
    for cluster in started:
        cluster.stop(5.0)


def test_list_watch_and_relist_after_410_gone(source, recorded, watched):
    by = nodes_by_name(recorded)
    newcomer = copy.deepcopy(by["spr-tdx-2"])
    newcomer["metadata"].update(name="spr-tdx-3", resourceVersion="918701")
    newcomer["metadata"]["labels"]["kubernetes.io/hostname"] = "spr-tdx-3"
    became_ready = copy.deepcopy(by["spr-tdx-pending"])
    became_ready["metadata"]["resourceVersion"] = "918702"
    became_ready["metadata"]["labels"]["intel.feature.node.kubernetes.io/tdx"] = "true"
    became_ready["status"]["allocatable"]["tdx.intel.com/keys"] = "64"
    deleted = copy.deepcopy(by["clx-plain-1"])
    deleted["metadata"]["resourceVersion"] = "918703"
    api = FakeKubeApi(recorded, watch_scripts=[
        [event("ADDED", newcomer), event("MODIFIED", became_ready), event("DELETED", deleted),
         {"type": "BOOKMARK", "object": {"kind": "Node", "apiVersion": "v1", "metadata": {"resourceVersion": "918710"}}}],
    ]).start()
    # then the API server moves on past what the watch can resume from (410 Gone): the cache must
    # list again and see a node that only the new list has
    relisted = copy.deepcopy(recorded)
    late = copy.deepcopy(by["milan-snp-1"])
    late["metadata"].update(name="milan-snp-9", resourceVersion="918950")
    relisted["items"] = [n for n in relisted["items"] if n["metadata"]["name"] != "clx-plain-1"] + [
        newcomer, became_ready, late]
    relisted["metadata"]["resourceVersion"] = "918960"
    try:
        cache = watched(api)
        assert cache.wait_ready(10)
        assert wait_until(lambda: "spr-tdx-3" in cache.nodes().entries and api.open_watches("nodes") == 1)
        api.set_nodes(relisted)
        api.compact("nodes")
        api.close_watches("nodes")
        assert wait_until(lambda: cache.lists >= 2 and "milan-snp-9" in cache.nodes().entries)
        nodes = cache.nodes()
        assert "spr-tdx-3" in nodes.entries and "clx-plain-1" not in nodes.entries
        assert nodes.get("spr-tdx-pending").node.tee_ready  # the MODIFIED event made TDX ready
        watches = [s.resource_version for s in api.seen if s.watch]
        # from the list's version, then from the bookmark's (twice: the second one gets 410 Gone)
        assert watches[:3] == ["918700", "918710", "918710"]
        assert [s.watch for s in api.seen[:5]] == [False, True, True, True, False]
        assert wait_until(lambda: any(s.watch and s.resource_version == "918960" for s in api.seen))

        handle = start_extender(source, "127.0.0.1", 0, cache)
        try:
            names = ["spr-tdx-1", "spr-tdx-3", "spr-tdx-pending", "clx-plain-1", "milan-snp-9"]
            _, reply = post(handle.url + "/filter", args_names(recorded_pods()["managed_tdx"], names))
            assert passed_names(reply) == ["spr-tdx-1", "spr-tdx-3", "spr-tdx-pending"]
            assert "node cache" in reply["FailedAndUnresolvableNodes"]["clx-plain-1"]
            assert reply["FailedAndUnresolvableNodes"]["milan-snp-9"] == "node(s) lack TEE tdx"
        finally:
            handle.stop(2.0)
    finally:
        api.stop()


def test_unchanged_nodes_keep_their_entries_across_a_relist(recorded, watched):
    api = FakeKubeApi(recorded, watch_scripts=[[event("ERROR", {"code": 410, "reason": "Expired", "message": "old"})]]).start()
    try:
        cache = watched(api)
        assert cache.wait_ready(10)
        first = cache.nodes().get("spr-tdx-1")
        assert wait_until(lambda: cache.lists >= 2)
        assert cache.nodes().get("spr-tdx-1") is first  # decision memos stay valid
    finally:
        api.stop()


def test_api_server_down_reports_not_ready(source):
    cfg = client.Configuration(host="http://127.0.0.1:9")  # discard port: nothing listens
    cluster = KubeCluster(client.ApiClient(cfg), retry_s=0.05, max_retry_s=0.1).start()
    cache = KubeNodeCache(cluster.nodes)
    try:
        assert wait_until(lambda: cache.last_error != "")
        assert not cache.ready and "not synced" in cache.status()
    finally:
        cluster.stop(5.0)


def test_a_status_heartbeat_changes_nothing_downstream(recorded, watched):
    by = nodes_by_name(recorded)
    heartbeat = copy.deepcopy(by["spr-tdx-1"])
    for c in heartbeat["status"]["conditions"]:
        c["lastHeartbeatTime"] = "2025-06-12T09:46:27Z"
    relabelled = copy.deepcopy(heartbeat)
    del relabelled["metadata"]["labels"]["intel.feature.node.kubernetes.io/tdx"]
    relabelled["status"]["allocatable"].pop("tdx.intel.com/keys")
    api = FakeKubeApi(recorded).start()
    try:
        cache = watched(api)
        assert cache.wait_ready(10)
        first = cache.nodes()
        store = cache.store
        api.emit("nodes", "MODIFIED", heartbeat)
        assert wait_until(lambda: store.get("", "spr-tdx-1")["metadata"]["resourceVersion"] != "918273")
        assert cache.nodes() is first            # the heartbeat published nothing
        api.emit("nodes", "MODIFIED", relabelled)
        assert wait_until(lambda: TeeKind.TDX not in cache.nodes().get("spr-tdx-1").node.tee_ready)
        # the label change did, with a fresh conversion
        assert cache.nodes().version == first.version + 1
    finally:
        api.stop()


def test_a_cache_that_stops_hearing_from_the_api_server_refuses_tee_pods_and_is_not_ready(recorded, source):
    """The API server goes away after the first list: once the cache has not heard from it for
    `stale_after_s`, a TEE withdrawn since would not be seen. /readyz says so (503), a TDX pod is
    refused everywhere as unresolvable (no eviction either), a plain pod passes as before."""
    from .helpers import get

    api = FakeKubeApi(recorded).start()
    stopped = False
    cluster = kube_cluster(api).start()
    cache = KubeNodeCache(cluster.nodes, stale_after_s=1.0)
    handle = start_extender(source, "127.0.0.1", 0, cache)
    try:
        assert cache.wait_ready(10)
        names = [n["metadata"]["name"] for n in recorded["items"]]
        pods = recorded_pods()
        _, fresh = post(handle.url + "/filter", args_names(pods["managed_tdx"], names))
        assert passed_names(fresh) == ["spr-tdx-1", "spr-tdx-2"]
        api.stop()                                     # the watch ends and cannot be opened again
        stopped = True
        assert wait_until(lambda: cache.stale() != "")
        status, text = get(handle.url + "/readyz")
        assert status == 503 and "last heard from the API server" in text and "pods that need a TEE are refused" in text
        _, reply = post(handle.url + "/filter", args_names(pods["managed_tdx"], names))
        assert passed_names(reply) == [] and set(reply["FailedAndUnresolvableNodes"]) == set(names)
        assert reply["FailedAndUnresolvableNodes"]["spr-tdx-1"].startswith(
            "node(s) not checked: the extender's node cache has not heard from the API server for ")
        _, plain = post(handle.url + "/filter", args_names(pods["unmanaged_plain"], names))
        assert passed_names(plain) == names
        victims = {"spr-tdx-1": {"Pods": [{"UID": "a"}], "NumPDBViolations": 0}}
        _, preempt = post(handle.url + "/preempt", {"Pod": pods["managed_tdx"], "NodeNameToMetaVictims": victims})
        assert preempt == {"NodeNameToMetaVictims": {}}
    finally:
        handle.stop(2.0)
        cluster.stop(5.0)
        if not stopped:
            api.stop()
