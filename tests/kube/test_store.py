"""ObjectStore and StoreView without a server: versions, snapshots, memory, views that never drift."""

from __future__ import annotations

import copy
import threading

from tests.kube_fake import recorded_list
from wattwise.kube.store import LAST_APPLIED, LISTED, ObjectStore, StoreView, key_of


def fresh(name: str) -> list[dict]:
    """A recorded list's items as the JSON decoder hands them to the store (its own copies)."""
    return copy.deepcopy(recorded_list(name)["items"])


def renamed(obj: dict, name: str, rv: str) -> dict:
    o = copy.deepcopy(obj)
    o["metadata"].update(name=name, resourceVersion=rv)
    return o


class Keys(StoreView):
    """A view that keeps the keys it saw, and how it learnt them."""

    def __init__(self, store):
        self.keys: set = set()
        self.calls: list[str] = []
        super().__init__(store)

    def _rebuild(self, items):
        self.calls.append("rebuild")
        self.keys = {key_of(o) for o in items}
        return True

    def _apply(self, kind, obj):
        self.calls.append(kind)
        if kind == "DELETED":
            self.keys.discard(key_of(obj))
        else:
            self.keys.add(key_of(obj))
        return True


def test_snapshot_get_version_and_no_history():
    store = ObjectStore("pods")
    assert (store.version, store.items(), store.synced) == (0, (), False)
    items = fresh("pods")
    store.replace_all(items)
    assert store.synced and store.version == 1 and len(store) == len(items)
    snap = store.snapshot()
    assert snap is store.snapshot()                      # built once per version
    pod = store.get("payments", "ledger-db-0")
    assert pod["spec"]["nodeName"] == "clx-plain-1"
    assert store.get("payments", "nope") is None

    store.apply("MODIFIED", renamed(pod, "ledger-db-0", "990001"))
    assert store.version == 2 and store.get("payments", "ledger-db-0")["metadata"]["resourceVersion"] == "990001"
    assert snap.version == 1 and pod in snap.items       # an old snapshot stays as it was
    store.apply("DELETED", pod)
    store.apply("DELETED", pod)                          # already gone: no change
    assert store.version == 3 and store.get("payments", "ledger-db-0") is None
    assert len(store) == len(items) - 1                  # what is current, nothing more


def test_cluster_scoped_objects_have_an_empty_namespace():
    store = ObjectStore("runtimeclasses")
    store.replace_all(fresh("runtimeclasses"))
    assert store.get("", "kata-qemu-tdx")["overhead"]["podFixed"] == {"cpu": "1", "memory": "2048Mi"}


def test_bookkeeping_is_left_out_of_stored_objects():
    store = ObjectStore("scaledobjects")
    store.replace_all(fresh("scaledobjects"))
    so = store.get("retail", "checkout-cams")
    assert "managedFields" not in so["metadata"] and LAST_APPLIED not in so["metadata"]["annotations"]
    assert so["metadata"]["finalizers"] == ["finalizer.keda.sh"] and so["status"]["hpaName"] == "keda-hpa-checkout-cams"
    kept = ObjectStore("scaledobjects", strip=False)
    kept.replace_all(fresh("scaledobjects"))
    assert kept.get("retail", "checkout-cams")["metadata"]["managedFields"]


def test_a_relist_that_changes_nothing_is_no_change():
    store = ObjectStore("deployments")
    store.replace_all(fresh("deployments"))
    seen = []
    store.subscribe(seen.append)
    store.replace_all(fresh("deployments"))
    assert store.version == 1 and seen == []
    again = fresh("deployments")
    again[0]["metadata"]["resourceVersion"] = "918999"
    store.replace_all(again)
    assert store.version == 2 and [c.kind for c in seen] == [LISTED]
    store.apply("MODIFIED", copy.deepcopy(again[0]))     # a watch replaying what the list showed
    assert store.version == 2


def test_a_view_applies_changes_in_order_and_rebuilds_after_a_gap():
    store = ObjectStore("pods")
    store.replace_all(fresh("pods"))
    view = Keys(store)                                   # built from the snapshot
    assert view.calls == ["rebuild"] and view.keys == {key_of(o) for o in store.items()}
    pod = store.get("retail", "checkout-cams-7c9d8f6b4-2xq8m")
    store.apply("ADDED", renamed(pod, "checkout-cams-7c9d8f6b4-new01", "990001"))
    store.apply("DELETED", pod)
    assert view.calls == ["rebuild", "ADDED", "DELETED"]
    # a change the view missed (e.g. it was not told, or its listener failed): it rebuilds
    store._listeners.clear()
    store.apply("ADDED", renamed(pod, "checkout-cams-7c9d8f6b4-new02", "990002"))
    store.subscribe(view._changed)
    store.apply("ADDED", renamed(pod, "checkout-cams-7c9d8f6b4-new03", "990003"))
    assert view.calls[-1] == "rebuild" and view.keys == {key_of(o) for o in store.items()}
    store.replace_all(fresh("pods"))
    assert view.calls[-1] == "rebuild" and view.keys == {key_of(o) for o in store.items()}


def test_a_failing_listener_does_not_stop_the_others(caplog):
    store = ObjectStore("nodes")
    seen = []

    def broken(change):
        raise RuntimeError("bug in a reader")

    store.subscribe(broken)
    store.subscribe(seen.append)
    store.replace_all(fresh("nodes"))
    assert [c.kind for c in seen] == [LISTED] and "a listener failed" in caplog.text


def test_readers_in_other_threads_see_whole_snapshots():
    """A snapshot's items and version belong together, whatever the writer does meanwhile."""
    store = ObjectStore("pods")
    base = fresh("pods")[0]
    stop = threading.Event()
    bad = []

    def read():
        while not stop.is_set():
            snap = store.snapshot()
            if len(snap.items) != snap.version:
                bad.append(snap.version)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for t in readers:
        t.start()
    for i in range(2000):
        store.apply("ADDED", renamed(base, f"p-{i}", str(i + 1)))
    stop.set()
    for t in readers:
        t.join()
    assert bad == [] and store.version == len(store) == 2000


def test_status_updates_leave_the_spec_version_alone():
    """The API server bumps `metadata.generation` on spec changes only; a Deployment's status
    updates (every scale, every pod ready) move `version`, not `spec_version`."""
    from wattwise.kube.store import ObjectStore

    def deployment(generation, ready, rv, image="v1"):
        return {"metadata": {"namespace": "retail", "name": "cams", "generation": generation, "resourceVersion": rv},
                "spec": {"template": {"spec": {"containers": [{"image": image}]}}}, "status": {"readyReplicas": ready}}

    store = ObjectStore("deployments")
    store.replace_all([deployment(1, 0, "1")])
    version, spec = store.version, store.spec_version
    store.apply("MODIFIED", deployment(1, 3, "2"))              # status only
    assert store.version == version + 1 and store.spec_version == spec
    store.apply("MODIFIED", deployment(2, 3, "3", image="v2"))  # the template changed
    assert store.spec_version == spec + 1
    store.replace_all([deployment(2, 4, "4", image="v2")])      # a relist with a status change only
    assert store.spec_version == spec + 1
    store.apply("DELETED", deployment(2, 4, "5", image="v2"))
    assert store.spec_version == spec + 2
    no_generation = {"metadata": {"name": "kata-qemu-tdx", "resourceVersion": "9"}, "handler": "kata-qemu-tdx"}
    store.apply("ADDED", no_generation)
    store.apply("MODIFIED", {**no_generation, "metadata": {"name": "kata-qemu-tdx", "resourceVersion": "10"}})
    assert store.spec_version == spec + 4                        # without a generation every change counts


def test_the_workload_source_is_not_rebuilt_on_a_deployment_status_update():
    import copy

    from tests.kube_fake import FakeKubeApi, kube_cluster, recorded_list, wait_until
    from wattwise.kube.inputs import ClusterWorkloadSource

    api = FakeKubeApi.recorded().start()
    cluster = kube_cluster(api).start()
    try:
        assert cluster.wait_synced(10)
        source = ClusterWorkloadSource(cluster, lambda address: True)
        first = source.current()
        dep = copy.deepcopy(recorded_list("deployments")["items"][0])
        dep["metadata"]["namespace"] = dep["metadata"].get("namespace", "retail")
        dep.setdefault("status", {})["readyReplicas"] = 7          # generation unchanged
        version = cluster.deployments.version
        api.emit("deployments", "MODIFIED", dep)
        assert wait_until(lambda: cluster.deployments.version > version)
        assert source.current() is first
        dep = copy.deepcopy(dep)       # the fake, as the API server, bumps the generation of a new spec
        dep["spec"]["template"]["spec"]["containers"][0]["image"] = "registry.example/retail/cams:v2"
        api.emit("deployments", "MODIFIED", dep)
        assert wait_until(lambda: source.current() is not first)
    finally:
        cluster.stop(5.0)
        api.stop()


def test_a_pod_record_says_since_when_it_is_ready():
    from wattwise.kube.workload_pods import pod_record

    pod = {"metadata": {"namespace": "retail", "name": "cams-0", "labels": {"wattwise.io/workload": "cams"},
                        "resourceVersion": "7"},
           "spec": {"nodeName": "spr-tdx-1"},
           "status": {"phase": "Running", "conditions": [
               {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-12-03T10:00:00Z"},
               {"type": "Ready", "status": "True", "lastTransitionTime": "2026-12-03T10:01:30Z"}]}}
    record = pod_record(pod)
    assert record.ready and record.ready_since_s == 1796292090.0
    pod["status"]["conditions"][1]["lastTransitionTime"] = "yesterday"
    assert pod_record(pod).ready_since_s is None
