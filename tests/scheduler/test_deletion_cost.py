"""The pod-deletion-cost reconciler against the fake Kubernetes API: the right pods get the core's
costs by JSON merge patch, unchanged values are not patched again, failures are counted."""

from __future__ import annotations

import copy
import argparse
import threading
import time

import pytest
from kubernetes import client

from wattwise.models.rollout import DELETION_COST_ANNOTATION, deletion_cost
from wattwise.scheduler.deletion_cost import DeletionCostReconciler, kube_patcher
from wattwise.scheduler.metrics import ExtenderMetrics
from wattwise.scheduler.replica_counts import KubeReplicaCounts

from .fake_kube import FakeKubeApi
from .helpers import recorded_node_list, recorded_pods, running_pod

BADGE, CHECKOUT = "security/badge-readers", "retail/checkout-cams"


def pod_of(workload: str, name: str, node: str, **kwargs) -> dict:
    p = copy.deepcopy(recorded_pods()["managed_tdx"])
    namespace = workload.split("/")[0]
    p["metadata"]["namespace"] = namespace
    p["metadata"]["labels"]["wattwise.io/workload"] = workload
    return running_pod(p, name, node, **kwargs)


def scene(view) -> list[dict]:
    """badge-readers: planned all on uk-spr-1, 2 there and 3 still on de-spr-2 (off-plan).
    checkout-cams: 5 on uk-spr-1 and 1 on de-spr-3, both planned nodes; the de-spr-3 one is
    already annotated right. Plus a pod of a workload the plan does not know."""
    assert dict(view.plan.workloads[BADGE].by_node) == {"uk-spr-1": 5}
    assert {"uk-spr-1", "de-spr-3"} <= set(view.plan.workloads[CHECKOUT].by_node)
    planned_de3 = view.plan.workloads[CHECKOUT].by_node["de-spr-3"]
    return ([pod_of(BADGE, f"badge-new-{i}", "uk-spr-1") for i in range(2)]
            + [pod_of(BADGE, f"badge-old-{i}", "de-spr-2") for i in range(3)]
            + [pod_of(CHECKOUT, f"checkout-uk-{i}", "uk-spr-1", ready=i > 0) for i in range(5)]
            + [pod_of(CHECKOUT, "checkout-de3", "de-spr-3", annotations={DELETION_COST_ANNOTATION: str(planned_de3)})]
            + [pod_of("retail/lobby-cams", "lobby-0", "de-spr-2")])


@pytest.fixture
def kube(source):
    items = scene(source.current())
    api = FakeKubeApi(recorded_node_list(), pod_list={"kind": "PodList", "apiVersion": "v1",
                                                      "metadata": {"resourceVersion": "2000"}, "items": items}).start()
    pods = KubeReplicaCounts(client.ApiClient(client.Configuration(host=api.url)), retry_s=0.05).start()
    assert pods.watch.wait_synced(10)
    yield api, pods
    api.stop()          # ends the held-open watch first, so the watcher stops at once
    pods.stop(5.0)


def reconciler(source, pods, **kwargs) -> DeletionCostReconciler:
    kwargs.setdefault("max_patches_per_s", 1000.0)
    return DeletionCostReconciler(source, pods, kube_patcher(pods.api_client), ExtenderMetrics(), **kwargs)


def patched(api) -> dict[str, str]:
    return {f"{p.namespace}/{p.name}": p.body["metadata"]["annotations"][DELETION_COST_ANNOTATION]
            for p in api.patches}


def test_patches_the_core_costs_once_and_only_where_they_differ(source, kube):
    api, pods = kube
    r = reconciler(source, pods)
    first = r.reconcile_once()
    checkout_uk = deletion_cost("uk-spr-1", source.current().plan.workloads[CHECKOUT].by_node,
                                {"uk-spr-1": 5, "de-spr-3": 1})
    expected = {**{f"security/badge-new-{i}": "5" for i in range(2)},        # planned node, under the plan
                **{f"security/badge-old-{i}": "-3" for i in range(3)},       # off-plan: 3 over
                **{f"retail/checkout-uk-{i}": str(checkout_uk) for i in range(5)}}
    assert patched(api) == expected
    assert (first.patched, first.failed) == (10, 0)
    assert all(p.content_type == "application/merge-patch+json" for p in api.patches)
    assert all(set(p.body) == {"metadata"} and set(p.body["metadata"]) == {"annotations"} for p in api.patches)
    # the values are the core's, for the running pods per node
    assert expected["security/badge-old-0"] == str(deletion_cost("de-spr-2", {"uk-spr-1": 5},
                                                                 {"uk-spr-1": 2, "de-spr-2": 3}))
    assert r.metrics.deletion_cost_patches._value.get() == 10

    # nothing changed (the watch has not even shown the new values back): no PATCH
    assert r.reconcile_once().patched == 0 and len(api.patches) == 10
    # the watch shows the patched pods: still nothing to do
    for item in api.pod_list["items"]:
        pods.apply("MODIFIED", item)
    again = r.reconcile_once()
    assert (again.patched, again.unchanged, len(api.patches)) == (0, 11, 10)

    # two old badge pods go: the last one is now 1 over the plan, the planned ones keep their cost
    for item in [i for i in api.pod_list["items"] if i["metadata"]["name"] in ("badge-old-0", "badge-old-1")]:
        pods.apply("DELETED", item)
    assert r.reconcile_once().patched == 1
    assert (api.patches[-1].name, patched(api)["security/badge-old-2"]) == ("badge-old-2", "-1")


def test_patches_go_out_in_the_order_the_replicaset_controller_deletes(source, kube):
    """Paced PATCHes reach first the pods a scale-down removes first (models.delete_order): per
    workload, not-ready pods, then the lowest new cost."""
    api, pods = kube
    reconciler(source, pods).reconcile_once()
    order = [f"{p.namespace}/{p.name}" for p in api.patches]
    badge = [n for n in order if n.startswith("security/")]
    assert badge[:3] == sorted(badge[:3]) and all("old" in n for n in badge[:3])   # -3 before 5
    checkout = [n for n in order if n.startswith("retail/")]
    assert checkout[0] == "retail/checkout-uk-0"   # the one not ready yet


def test_a_forbidden_patch_is_counted_and_the_reconciler_carries_on(source, kube):
    api, pods = kube
    api.patch_status = 403
    r = reconciler(source, pods, retry_s=0.05, check_s=0.05)
    result = r.reconcile_once()
    assert (result.patched, result.failed) == (0, 10)
    assert r.metrics.deletion_cost_errors.labels("403")._value.get() == 10
    # in its thread it keeps retrying, and catches up once RBAC is fixed
    r.start()
    try:
        deadline = time.monotonic() + 10
        while len(api.patches) < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        api.patch_status = None
        while r.metrics.deletion_cost_patches._value.get() < 10 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        r.stop(5.0)
    assert r.metrics.deletion_cost_errors.labels("403")._value.get() >= 20
    assert r.metrics.deletion_cost_patches._value.get() == 10


def test_pods_not_current_are_not_patched(source, kube):
    api, pods = kube
    pods.watch.last_error = "ConnectionRefusedError: the API server is down"
    assert reconciler(source, pods).reconcile_once().skipped
    assert api.patches == []


def test_patches_are_spaced_by_the_rate_limit(source, kube):
    api, pods = kube
    now = [0.0]
    sleeps = []

    def sleep(s):
        sleeps.append(s)
        now[0] += s

    r = reconciler(source, pods, max_patches_per_s=4.0, clock=lambda: now[0], sleep=sleep)
    assert r.reconcile_once().patched == 10
    assert now[0] == pytest.approx(9 * 0.25)     # ten PATCHes at 4/s: the last one 2.25 s after the first


def test_the_thread_follows_pod_changes(source, kube):
    api, pods = kube
    r = reconciler(source, pods, check_s=0.05).start()
    try:
        deadline = time.monotonic() + 10
        while len(api.patches) < 10 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(api.patches) == 10
        done = threading.Event()
        pods.add_listener(done.set)
        old = next(i for i in api.pod_list["items"] if i["metadata"]["name"] == "badge-old-0")
        pods.apply("DELETED", old)
        while len(api.patches) < 12 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        r.stop(5.0)
    assert done.is_set()
    assert {p.name: p.body["metadata"]["annotations"][DELETION_COST_ANNOTATION] for p in api.patches[10:]} == \
        {"badge-old-1": "-2", "badge-old-2": "-2"}


def test_serve_wiring_shares_the_pod_watch_and_patches(source, tmp_path):
    """`--set-deletion-cost` on the extender against the API (as `wattwise serve` wires it): one pod
    watch, the reconciler started and stopped with the extender, its counter on /metrics."""
    from wattwise.scheduler.server import add_extender_arguments, start_extender_from_args, start_pod_watch_from_args

    from .helpers import get

    api = FakeKubeApi(recorded_node_list(), pod_list={"kind": "PodList", "apiVersion": "v1",
                                                      "metadata": {"resourceVersion": "2000"},
                                                      "items": scene(source.current())}).start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: fake, cluster: {{server: "{api.url}"}}}}]
users: [{{name: test, user: {{}}}}]
contexts: [{{name: fake, context: {{cluster: fake, user: test}}}}]
current-context: fake
""")
    parser = argparse.ArgumentParser()
    add_extender_arguments(parser)
    args = parser.parse_args(["--http-port", "0", "--kubeconfig", str(kubeconfig), "--set-deletion-cost",
                              "--deletion-cost-qps", "1000"])
    args.host, args.demo, args.extender = "127.0.0.1", False, True
    pods = start_pod_watch_from_args(args)
    handle = None
    try:
        handle = start_extender_from_args(args, source, pods)
        deadline = time.monotonic() + 10
        while len(api.patches) < 10 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(api.patches) == 10
        assert handle.service.replica_counts is pods     # the extender reads the same watch
        code, text = get(handle.url + "/metrics")
        assert code == 200 and "wattwise_extender_deletion_cost_patches_total 10.0" in text
    finally:
        if handle is not None:
            handle.stop(2.0)
        api.stop()
        pods.stop(5.0)
