"""The node cache against a fake API server serving recorded Node JSON: list, watch, 410, re-list."""

from __future__ import annotations

import copy
import time

import pytest
from kubernetes import client

from wattwise.models.tee import TeeKind
from wattwise.scheduler.node_cache import KubeNodeCache
from wattwise.scheduler.server import start_extender

from .fake_kube import FakeKubeApi
from .helpers import args_names, passed_names, post, recorded_node_list, recorded_pods


def wait_until(predicate, timeout_s: float = 15.0) -> bool:
    """Poll for an asynchronous outcome; the test fails on the assertion after it, not on time."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def nodes_by_name(node_list: dict) -> dict:
    return {n["metadata"]["name"]: n for n in node_list["items"]}


def event(kind: str, obj: dict) -> dict:
    return {"type": kind, "object": obj}


@pytest.fixture
def recorded():
    return recorded_node_list()


def make_cache(api: FakeKubeApi) -> KubeNodeCache:
    cfg = client.Configuration(host=api.url)
    return KubeNodeCache(client.ApiClient(cfg), resync_s=3600, watch_timeout_s=30, retry_s=0.05, max_retry_s=0.1)


def test_list_watch_and_relist_after_410_gone(source, recorded):
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
    gone = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "too old resource version: 918703 (918900)", "reason": "Expired", "code": 410}
    api = FakeKubeApi(recorded, watch_scripts=[
        [event("ADDED", newcomer), event("MODIFIED", became_ready), event("DELETED", deleted),
         {"type": "BOOKMARK", "object": {"kind": "Node", "apiVersion": "v1", "metadata": {"resourceVersion": "918710"}}}],
        [event("ERROR", gone)],
    ]).start()
    cache = make_cache(api)
    # after the 410 the cache must list again and see a node that only the new list has
    relisted = copy.deepcopy(recorded)
    late = copy.deepcopy(by["milan-snp-1"])
    late["metadata"].update(name="milan-snp-9", resourceVersion="918950")
    relisted["items"] = [n for n in relisted["items"] if n["metadata"]["name"] != "clx-plain-1"] + [
        newcomer, became_ready, late]
    relisted["metadata"]["resourceVersion"] = "918960"
    try:
        cache.start()
        assert cache.wait_ready(10)
        api.set_nodes(relisted)
        assert wait_until(lambda: cache.lists >= 2 and "milan-snp-9" in cache.nodes().entries)
        nodes = cache.nodes()
        assert "spr-tdx-3" in nodes.entries and "clx-plain-1" not in nodes.entries
        assert nodes.get("spr-tdx-pending").node.tee_ready  # the MODIFIED event made TDX ready
        watches = [s.resource_version for s in api.seen if s.watch]
        assert watches[:2] == ["918700", "918710"]  # from the list's version, then from the bookmark's
        assert [s.watch for s in api.seen[:4]] == [False, True, True, False]
        assert wait_until(lambda: any(s.watch and s.resource_version == "918960" for s in api.seen))

        handle = start_extender(source, "127.0.0.1", 0, cache)
        try:
            names = ["spr-tdx-1", "spr-tdx-3", "spr-tdx-pending", "clx-plain-1", "milan-snp-9"]
            _, reply = post(handle.url + "/filter", args_names(recorded_pods()["managed_tdx"], names))
            assert passed_names(reply) == ["spr-tdx-1", "spr-tdx-3", "spr-tdx-pending"]
            assert "node cache" in reply["FailedNodes"]["clx-plain-1"]
            assert reply["FailedAndUnresolvableNodes"]["milan-snp-9"] == "node(s) lack TEE tdx"
        finally:
            handle.stop(2.0)
    finally:
        cache.stop(5.0)
        api.stop()


def test_unchanged_nodes_keep_their_entries_across_a_relist(recorded):
    api = FakeKubeApi(recorded, watch_scripts=[[event("ERROR", {"code": 410, "reason": "Expired", "message": "old"})]]).start()
    cache = make_cache(api)
    try:
        cache.start()
        assert cache.wait_ready(10)
        first = cache.nodes().get("spr-tdx-1")
        assert wait_until(lambda: cache.lists >= 2)
        assert cache.nodes().get("spr-tdx-1") is first  # decision memos stay valid
    finally:
        cache.stop(5.0)
        api.stop()


def test_api_server_down_reports_not_ready(source):
    cfg = client.Configuration(host="http://127.0.0.1:9")  # discard port: nothing listens
    cache = KubeNodeCache(client.ApiClient(cfg), retry_s=0.05, max_retry_s=0.1).start()
    try:
        assert wait_until(lambda: cache.last_error != "")
        assert not cache.ready and "not synced" in cache.status()
    finally:
        cache.stop(5.0)


def test_a_status_heartbeat_changes_nothing_downstream(recorded):
    by = nodes_by_name(recorded)
    heartbeat = copy.deepcopy(by["spr-tdx-1"])
    heartbeat["metadata"]["resourceVersion"] = "918799"
    for c in heartbeat["status"]["conditions"]:
        c["lastHeartbeatTime"] = "2025-06-12T09:46:27Z"
    relabelled = copy.deepcopy(heartbeat)
    relabelled["metadata"]["resourceVersion"] = "918800"
    del relabelled["metadata"]["labels"]["intel.feature.node.kubernetes.io/tdx"]
    relabelled["status"]["allocatable"].pop("tdx.intel.com/keys")
    api = FakeKubeApi(recorded, watch_scripts=[[event("MODIFIED", heartbeat)], [event("MODIFIED", relabelled)]]).start()
    cache = make_cache(api)
    try:
        cache.start()
        assert cache.wait_ready(10)
        first = cache.nodes()
        assert wait_until(lambda: TeeKind.TDX not in cache.nodes().get("spr-tdx-1").node.tee_ready)
        # the heartbeat published nothing; the label change did, with a fresh conversion
        assert cache.nodes().version == first.version + 1
    finally:
        cache.stop(5.0)
        api.stop()
