"""KubeCluster against the fake API server serving recorded objects: one list per resource, then
the watch; ADDED/MODIFIED/DELETED, a closed watch, 410 Gone, pages, and resources the API server
does not serve (404) or RBAC forbids (403), none of which stops the others."""

from __future__ import annotations

import copy
import logging

import pytest

from tests.kube_fake import RESOURCES, FakeKubeApi, kube_cluster, recorded_list, wait_until
from wattwise.kube.cluster import UNFINISHED_PODS

NAMES = [name for name, *_ in RESOURCES]
RECORDED = {"nodes": 8, "pods": 6, "runtimeclasses": 2, "scaledobjects": 1, "deployments": 1, "statefulsets": 1}


@pytest.fixture
def api():
    api = FakeKubeApi.recorded().start()
    yield api
    api.stop()          # ends the held-open watches first, so the watchers stop at once


@pytest.fixture
def cluster(api):
    cluster = kube_cluster(api)
    yield cluster
    cluster.stop(5.0)


def test_each_resource_is_listed_once_into_its_store(api, cluster):
    cluster.start()
    assert cluster.wait_synced(10)
    assert {n: len(s) for n, s in cluster.stores.items()} == RECORDED
    assert {n: api.lists(n) for n in NAMES} == dict.fromkeys(NAMES, 1)
    # every tenant's pods, unfinished ones only (the finished Job pod is left out by the server)
    assert api.resources["pods"].seen[0].field_selector == UNFINISHED_PODS
    assert {p["metadata"]["namespace"] for p in cluster.pods.items()} == {"retail", "payments", "kube-system",
                                                                          "monitoring"}
    assert cluster.pods.get("analytics", "footfall-report-28751040-xk2vd") is None
    so = cluster.scaled_objects.get("retail", "checkout-cams")
    assert so["apiVersion"] == "keda.sh/v1alpha1" and so["spec"]["triggers"][0]["metadata"] == {
        "scalerAddress": "wattwise-scaler.wattwise-system.svc:6000", "streams": "48", "workload": "checkout-cams"}
    assert "managedFields" not in so["metadata"]
    template = cluster.deployments.get("retail", "checkout-cams")["spec"]["template"]
    assert template["spec"]["runtimeClassName"] == "kata-qemu-tdx"
    assert cluster.runtime_classes.get("", "kata-qemu-tdx")["overhead"]["podFixed"]["memory"] == "2048Mi"
    assert cluster.stateful_sets.get("payments", "ledger-db")["spec"]["serviceName"] == "ledger-db-headless"
    status = cluster.status().splitlines()
    assert [line.split(":")[0] for line in status] == NAMES and "scaledobjects: 1, last heard" in status[3]


@pytest.mark.parametrize("name", NAMES)
def test_each_store_follows_added_modified_deleted(api, cluster, name):
    cluster.start()
    assert cluster.wait_synced(10)
    store = cluster.stores[name]
    new = copy.deepcopy(recorded_list(name)["items"][0])
    new["metadata"]["name"] += "-new"
    ns = new["metadata"].get("namespace", "")
    before = store.version
    api.emit(name, "ADDED", new)
    assert wait_until(lambda: store.get(ns, new["metadata"]["name"]) is not None)
    new["metadata"].setdefault("labels", {})["wattwise.io/test"] = "modified"
    api.emit(name, "MODIFIED", new)
    assert wait_until(lambda: (store.get(ns, new["metadata"]["name"])["metadata"].get("labels") or {})
                      .get("wattwise.io/test") == "modified")
    api.emit(name, "DELETED", new)
    assert wait_until(lambda: store.get(ns, new["metadata"]["name"]) is None)
    assert store.version == before + 3 and len(store) == RECORDED[name]
    assert api.lists(name) == 1                # followed by the watch alone


def test_a_pod_that_finishes_leaves_the_store(api, cluster):
    """The field selector keeps finished pods out: the API server shows a pod that finishes to
    such a watch as DELETED."""
    cluster.start()
    assert cluster.wait_synced(10)
    pod = copy.deepcopy(cluster.pods.get("payments", "ledger-db-0"))
    pod["status"]["phase"] = "Succeeded"
    api.emit("pods", "MODIFIED", pod)
    assert wait_until(lambda: cluster.pods.get("payments", "ledger-db-0") is None)


def test_a_closed_watch_resumes_from_the_last_version_without_listing(api, cluster):
    cluster.start()
    assert cluster.wait_synced(10)
    first = copy.deepcopy(recorded_list("deployments")["items"][0])
    first["metadata"]["name"] = "lobby-cams"
    rv = api.emit("deployments", "ADDED", first)["metadata"]["resourceVersion"]
    assert wait_until(lambda: cluster.deployments.get("retail", "lobby-cams") is not None)
    assert wait_until(lambda: api.open_watches("deployments") == 1)
    api.close_watches("deployments")
    second = copy.deepcopy(first)
    second["metadata"]["name"] = "parking-lpr"
    api.emit("deployments", "ADDED", second)      # while no watch may be open: replayed to the next
    assert wait_until(lambda: cluster.deployments.get("retail", "parking-lpr") is not None)
    watches = [s.resource_version for s in api.resources["deployments"].seen if s.watch]
    assert watches[:2] == ["918812", rv] and api.lists("deployments") == 1


@pytest.mark.parametrize("name", ["pods", "scaledobjects"])
def test_410_gone_lists_again(api, cluster, name):
    cluster.start()
    assert cluster.wait_synced(10)
    store = cluster.stores[name]
    assert wait_until(lambda: api.open_watches(name) == 1)
    # the API server moved on while this watch could not follow (events it no longer has)
    items = recorded_list(name)["items"]
    extra = copy.deepcopy(items[0])
    extra["metadata"].update(name=extra["metadata"]["name"] + "-missed", resourceVersion="990000")
    api.set_items(name, items + [extra], "990001")
    api.compact(name)
    api.close_watches(name)
    assert wait_until(lambda: store.get(extra["metadata"].get("namespace", ""), extra["metadata"]["name"]))
    assert api.lists(name) == 2 and store.lists == 2 and store.last_error == ""
    # and watches on from the new list's version
    assert wait_until(lambda: any(s.watch and s.resource_version == "990001" for s in api.resources[name].seen))


def test_lists_come_in_pages(api):
    cluster = kube_cluster(api, page_size=2).start()
    try:
        assert cluster.wait_synced(10)
        assert len(cluster.pods) == RECORDED["pods"] and api.lists("pods") == 1
        pages = [s for s in api.resources["pods"].seen if not s.watch]
        assert [s.limit for s in pages] == ["2"] * 3 and [s.continue_token for s in pages] == [None, "2", "4"]
    finally:
        cluster.stop(5.0)


def test_a_resource_the_api_server_does_not_serve_is_reported_and_retried(api, cluster, caplog):
    """KEDA not installed: ScaledObjects answer 404. The others are listed and followed; the
    problem is said once, in words; once the CRD is there, the store fills."""
    api.resources["scaledobjects"].served = False
    with caplog.at_level(logging.INFO, logger="wattwise.kube"):
        cluster.start()
        assert cluster.wait_synced(10, [n for n in NAMES if n != "scaledobjects"])
        store = cluster.scaled_objects
        assert wait_until(lambda: len(api.resources["scaledobjects"].seen) >= 4)   # retried
        assert not store.synced and store.last_error == (
            "the API server does not serve this resource (404 Not Found): 404 page not found "
            "(is KEDA installed? its CRD scaledobjects.keda.sh is missing)")
        assert f"scaledobjects: not listed yet: {store.last_error}" in cluster.status()
        said = [r for r in caplog.records if r.levelno == logging.WARNING and r.getMessage().startswith("scaledobjects")]
        assert len(said) == 1 and "404" in said[0].getMessage()
        api.resources["scaledobjects"].served = True          # KEDA installed
        assert store.wait_synced(10) and len(store) == 1 and store.last_error == ""
        assert any(r.getMessage() == "scaledobjects: listed again after errors" for r in caplog.records)
    assert {n: len(s) for n, s in cluster.stores.items()} == RECORDED


def test_a_forbidden_resource_says_which_permission_is_missing(api, cluster):
    api.resources["deployments"].status = 403
    cluster.start()
    assert cluster.wait_synced(10, ["nodes", "pods"])
    assert wait_until(lambda: cluster.deployments.last_error != "")
    assert cluster.deployments.last_error == (
        'forbidden (403): deployments.apps is forbidden: User "system:serviceaccount:wattwise-system:wattwise" '
        'cannot list resource "deployments" in API group "apps" at the cluster scope (grant the service account '
        'list and watch on deployments (API group "apps") in its ClusterRole)')
    assert not cluster.deployments.synced and len(cluster.nodes) == RECORDED["nodes"]


def test_a_refused_watch_backs_off_instead_of_listing_every_retry(api, caplog):
    """RBAC granting `list` but not `watch`: the list works, so the store fills, but the watch
    is refused each time. The store lists again at the backed-off pace (the wait doubles up to
    its ceiling, rather than restarting at the first retry after each good list), keeps the
    refusal as its error and says it once; once `watch` is granted, it follows and recovers."""
    api.resources["deployments"].watch_status = 403
    cluster = kube_cluster(api, retry_s=0.01, max_retry_s=0.08)
    with caplog.at_level(logging.INFO, logger="wattwise.kube"):
        cluster.start()
        try:
            store = cluster.deployments
            assert store.wait_synced(10) and len(store) == RECORDED["deployments"]
            watch = store.watch
            assert wait_until(lambda: api.lists("deployments") >= 5)
            assert watch.retry_delay_s == 0.08          # backed off to the ceiling, lists notwithstanding
            assert store.last_error.startswith("forbidden (403): deployments.apps is forbidden") and \
                'cannot watch resource "deployments"' in store.last_error
            said = [r for r in caplog.records if r.levelno == logging.WARNING
                    and r.getMessage().startswith("deployments")]
            assert len(said) == 1
            api.resources["deployments"].watch_status = None   # `watch` granted
            assert wait_until(lambda: api.open_watches("deployments") == 1)
            assert wait_until(lambda: store.last_error == "") and watch.retry_delay_s == 0.01
            assert any(r.getMessage() == "deployments: watching again after errors" for r in caplog.records)
        finally:
            cluster.stop(5.0)
