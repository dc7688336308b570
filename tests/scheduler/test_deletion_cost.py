"""The pod-deletion-cost reconciler against the fake Kubernetes API: the right pods get the core's
costs by JSON merge patch, unchanged values are not patched again, failures are counted."""

from __future__ import annotations

import copy
import argparse
import threading
import time

import pytest
from kubernetes import client

from wattwise.kube.cluster import KubeCluster
from wattwise.models.rollout import DELETION_COST_ANNOTATION, deletion_cost
from wattwise.scheduler.deletion_cost import DeletionCostReconciler, kube_patcher
from wattwise.scheduler.metrics import ExtenderMetrics
from tests.kube_fake import FakeKubeApi, kube_cluster

from .helpers import recorded_node_list, recorded_pods, running_pod

BADGE, CHECKOUT = "security/badge-readers", "retail/checkout-cams"


def pod_of(workload: str, name: str, node: str, **kwargs) -> dict:
    p = copy.deepcopy(recorded_pods()["managed_tdx"])
    namespace = workload.split("/")[0]
    p["metadata"]["namespace"] = namespace
    p["metadata"]["labels"]["wattwise.io/workload"] = workload
    return running_pod(p, name, node, **kwargs)


def scene_nodes(view) -> tuple[str, str, str, str]:
    """The nodes of the scene, from the plan (so it holds whichever nodes the planner picks):
    badge-readers' most planned node and one the plan gives it none of; checkout-cams' first two
    planned nodes."""
    badge, checkout = view.plan.workloads[BADGE].by_node, view.plan.workloads[CHECKOUT].by_node
    badge_on = min(badge, key=lambda n: (-badge[n], n))
    badge_off = min(n.name for n in view.snapshot.nodes if badge.get(n.name, 0) == 0)
    assert badge[badge_on] >= 2 and len(checkout) >= 2, (dict(badge), dict(checkout))
    checkout_a, checkout_b = sorted(checkout)[:2]
    return badge_on, badge_off, checkout_a, checkout_b


def scene(view) -> list[dict]:
    """badge-readers: 2 on its most planned node (under the plan) and 3 still on a node the plan
    gives it none of (off-plan). checkout-cams: 5 on one planned node and 1 on another, that one
    already annotated right. Plus a pod of a workload the plan does not know."""
    badge_on, badge_off, checkout_a, checkout_b = scene_nodes(view)
    right_b = deletion_cost(checkout_b, view.plan.workloads[CHECKOUT].by_node, {checkout_a: 5, checkout_b: 1})
    return ([pod_of(BADGE, f"badge-new-{i}", badge_on) for i in range(2)]
            + [pod_of(BADGE, f"badge-old-{i}", badge_off) for i in range(3)]
            + [pod_of(CHECKOUT, f"checkout-a-{i}", checkout_a, ready=i > 0) for i in range(5)]
            + [pod_of(CHECKOUT, "checkout-b", checkout_b, annotations={DELETION_COST_ANNOTATION: str(right_b)})]
            + [pod_of("retail/lobby-cams", "lobby-0", badge_off)])


@pytest.fixture
def kube(source):
    items = scene(source.current())
    api = FakeKubeApi(recorded_node_list(), pod_list={"kind": "PodList", "apiVersion": "v1",
                                                      "metadata": {"resourceVersion": "2000"}, "items": items}).start()
    cluster = kube_cluster(api).start()
    assert cluster.pods.wait_synced(10)
    yield api, cluster.workload_pods()
    api.stop()          # ends the held-open watches first, so the watchers stop at once
    cluster.stop(5.0)


def reconciler(source, kube, **kwargs) -> DeletionCostReconciler:
    api, pods = kube
    kwargs.setdefault("max_patches_per_s", 1000.0)
    patch = kube_patcher(client.ApiClient(client.Configuration(host=api.url)))
    return DeletionCostReconciler(source, pods, patch, ExtenderMetrics(), **kwargs)


def patched(api) -> dict[str, str]:
    return {f"{p.namespace}/{p.name}": p.body["metadata"]["annotations"][DELETION_COST_ANNOTATION]
            for p in api.patches}


def test_patches_the_core_costs_once_and_only_where_they_differ(source, kube):
    api, pods = kube
    r = reconciler(source, kube)
    first = r.reconcile_once()
    view = source.current()
    badge_on, badge_off, checkout_a, checkout_b = scene_nodes(view)
    badge_plan = view.plan.workloads[BADGE].by_node
    running = {badge_on: 2, badge_off: 3}
    checkout_a_cost = deletion_cost(checkout_a, view.plan.workloads[CHECKOUT].by_node, {checkout_a: 5, checkout_b: 1})
    expected = {**{f"security/badge-new-{i}": str(badge_plan[badge_on]) for i in range(2)},  # planned node, under the plan
                **{f"security/badge-old-{i}": "-3" for i in range(3)},       # off-plan: 3 over
                **{f"retail/checkout-a-{i}": str(checkout_a_cost) for i in range(5)}}
    assert patched(api) == expected
    assert (first.patched, first.failed) == (10, 0)
    assert all(p.content_type == "application/merge-patch+json" for p in api.patches)
    assert all(set(p.body) == {"metadata"} and set(p.body["metadata"]) == {"annotations"} for p in api.patches)
    # the values are the core's, for the running pods per node
    assert expected["security/badge-old-0"] == str(deletion_cost(badge_off, badge_plan, running))
    assert expected["security/badge-new-0"] == str(deletion_cost(badge_on, badge_plan, running))
    assert r.metrics.deletion_cost_patches._value.get() == 10

    # nothing changed (whether or not the watch has shown the new values back yet): no PATCH
    assert r.reconcile_once().patched == 0 and len(api.patches) == 10
    # the watch shows the patched pods (at the latest now): still nothing to do
    for item in api.pod_list["items"]:
        pods.store.apply("MODIFIED", item)
    again = r.reconcile_once()
    assert (again.patched, again.unchanged, len(api.patches)) == (0, 11, 10)

    # two old badge pods go: the last one is now 1 over the plan, the planned ones keep their cost
    for item in [i for i in api.pod_list["items"] if i["metadata"]["name"] in ("badge-old-0", "badge-old-1")]:
        pods.store.apply("DELETED", item)
    assert r.reconcile_once().patched == 1
    assert (api.patches[-1].name, patched(api)["security/badge-old-2"]) == ("badge-old-2", "-1")


def test_patches_go_out_in_the_order_the_replicaset_controller_deletes(source, kube):
    """Paced PATCHes reach first the pods a scale-down removes first (models.delete_order): per
    workload, not-ready pods, then the lowest new cost."""
    api, pods = kube
    reconciler(source, kube).reconcile_once()
    order = [f"{p.namespace}/{p.name}" for p in api.patches]
    badge = [n for n in order if n.startswith("security/")]
    assert badge[:3] == sorted(badge[:3]) and all("old" in n for n in badge[:3])   # -3 before 5
    checkout = [n for n in order if n.startswith("retail/")]
    assert checkout[0] == "retail/checkout-a-0"   # the one not ready yet


def test_a_forbidden_patch_is_counted_and_the_reconciler_carries_on(source, kube):
    api, pods = kube
    api.patch_status = 403
    r = reconciler(source, kube, retry_s=0.05, check_s=0.05)
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
    pods.store.watch.last_error = "ConnectionRefusedError: the API server is down"
    assert reconciler(source, kube).reconcile_once().skipped
    assert api.patches == []


def test_patches_are_spaced_by_the_rate_limit(source, kube):
    api, pods = kube
    now = [0.0]
    sleeps = []

    def sleep(s):
        sleeps.append(s)
        now[0] += s

    r = reconciler(source, kube, max_patches_per_s=4.0, clock=lambda: now[0], sleep=sleep)
    assert r.reconcile_once().patched == 10
    assert now[0] == pytest.approx(9 * 0.25)     # ten PATCHes at 4/s: the last one 2.25 s after the first


def test_the_thread_follows_pod_changes(source, kube):
    api, pods = kube
    r = reconciler(source, kube, check_s=0.05).start()
    try:
        deadline = time.monotonic() + 10
        while len(api.patches) < 10 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(api.patches) == 10
        done = threading.Event()
        pods.add_listener(done.set)
        old = next(i for i in api.pod_list["items"] if i["metadata"]["name"] == "badge-old-0")
        pods.store.apply("DELETED", old)
        while len(api.patches) < 12 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        r.stop(5.0)
    assert done.is_set()
    assert {p.name: p.body["metadata"]["annotations"][DELETION_COST_ANNOTATION] for p in api.patches[10:]} == \
        {"badge-old-1": "-2", "badge-old-2": "-2"}


def test_serve_wiring_shares_the_pod_watch_and_patches(source, tmp_path):
    """`--set-deletion-cost` on the extender against the API (as `wattwise serve` wires it): the
    process's one cluster watch, the reconciler started and stopped with the extender, its
    counter on /metrics."""
    from wattwise.scheduler.server import add_extender_arguments, start_extender_from_args

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
    cluster = KubeCluster.connect(args.kubeconfig, args.in_cluster, resync_s=args.node_resync_s).start()
    handle = None
    try:
        handle = start_extender_from_args(args, source, cluster)
        deadline = time.monotonic() + 10
        while len(api.patches) < 10 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(api.patches) == 10
        assert handle.service.replica_counts is cluster.workload_pods()    # the extender reads the same watch
        code, text = get(handle.url + "/metrics")
        assert code == 200 and "wattwise_extender_deletion_cost_patches_total 10.0" in text
    finally:
        if handle is not None:
            handle.stop(2.0)
        api.stop()
        cluster.stop(5.0)


def test_only_the_pods_a_node_holds_beyond_the_plan_are_marked_whatever_order_they_come_in(source):
    """A planned node holding two more pods than the plan wants there: two of its pods get the
    negative cost, the rest the plan's count, and the same two on every pass (pods come from the
    watch in no defined order; two replicas of the extender must patch alike)."""
    import random

    from wattwise.kube.workload_pods import PodRecord
    from wattwise.scheduler.deletion_cost import wanted_costs

    view = source.current()
    planned = view.plan.workloads[CHECKOUT].by_node
    node = min(planned, key=lambda n: (-planned[n], n))
    records = [PodRecord("retail", f"checkout-{i}", CHECKOUT, node, True, None, "1") for i in range(planned[node] + 2)]
    seen = set()
    for seed in range(5):
        shuffled = records[:]
        random.Random(seed).shuffle(shuffled)
        costs = {p.name: int(v) for p, v in wanted_costs(view, shuffled)}
        assert sorted(costs.values()) == [-2, -2] + [planned[node]] * planned[node]
        seen.add(frozenset(n for n, c in costs.items() if c < 0))
    assert len(seen) == 1
