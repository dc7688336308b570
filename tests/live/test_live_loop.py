"""The live control loop: `wattwise serve` with no scenario plans the cluster the Kubernetes API
serves (the API faked at our own port with recorded object JSON), and follows it: nodes added,
losing their TEE or removed; ScaledObjects created and deleted, with no KEDA call needed."""

from __future__ import annotations

import copy
import json

import grpc
import pytest

from tests.kube_fake import FakeKubeApi, recorded_list, wait_until
from tests.live.serve_proc import serve, write_kubeconfig

pytestmark = pytest.mark.slow

NODES = {n["metadata"]["name"]: n for n in recorded_list("nodes")["items"]}
CHECKOUT_MD = {"scalerAddress": "wattwise-scaler.wattwise-system.svc:6000", "workload": "checkout-cams", "streams": "48"}
TDX_READY = "intel.feature.node.kubernetes.io/tdx"


def eventually(predicate) -> bool:
    """Within a few refreshes (1 s each), with room for a loaded CI machine."""
    return wait_until(predicate, 45.0)


def managed_pod(name: str, namespace: str, runtime_class: str | None) -> dict:
    spec = {"containers": [{"name": "inference", "resources": {"requests": {"cpu": "4", "memory": "8Gi"}}}]}
    if runtime_class:
        spec["runtimeClassName"] = runtime_class
    return {"metadata": {"name": f"{name}-x1", "namespace": namespace, "labels": {"wattwise.io/workload": name}},
            "spec": spec}


@pytest.fixture
def live(tmp_path):
    api = FakeKubeApi.recorded().start()
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", api.url)
    served = serve(tmp_path, ["serve", "--scaler", "--extender", "--kubeconfig", str(kubeconfig), "--host", "127.0.0.1",
                              "--grpc-port", "0", "--health-port", "0", "--http-port", "0", "--plan-inline",
                              "--refresh-s", "1", "--grace-s", "2"])
    try:
        assert eventually(lambda: served.get("/plan")["workloads"]), served.log()
        yield api, served
    finally:
        assert served.stop() == 0, served.log()
        api.stop()


def placed_nodes(doc: dict, key: str) -> set[str]:
    w = next(w for w in doc["workloads"] if w["key"] == key)
    return {p["node"] for p in w["placements"]}


def test_serve_plans_the_cluster_the_api_serves(live):
    api, served = live
    doc = served.get("/plan")
    assert sorted(n["name"] for n in doc["nodes"]) == sorted(NODES)
    assert "from the Kubernetes API" in doc["inputs"]["nodes"]["source"]
    zones = {n["name"]: n["grid_zone"] for n in doc["nodes"]}
    assert zones["spr-tdx-1"] == "DE" and zones["milan-snp-1"] == "US-CAL-CISO"    # AWS regions, bundled map
    assert [w["key"] for w in doc["workloads"]] == ["retail/checkout-cams"]          # from the ScaledObject alone
    checkout = doc["workloads"][0]
    assert checkout["replicas"] > 0
    # kata-qemu-tdx: only nodes whose TDX is ready (not the pending or the cordoned one)
    assert placed_nodes(doc, "retail/checkout-cams") <= {"spr-tdx-1", "spr-tdx-2"}

    # KEDA's call for it is answered from that plan; an unknown workload is refused, never guessed
    assert served.metrics("checkout-cams", "retail", CHECKOUT_MD) >= checkout["replicas"]
    with pytest.raises(grpc.RpcError) as refused:
        served.metrics("nope", "retail", {**CHECKOUT_MD, "workload": "nope"})
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "no ScaledObject in the cluster asks this scaler for workload retail/nope" in refused.value.details()

    # the extender scores a managed pod of it on the cluster's nodes
    scores = served.post("/prioritize", {"Pod": managed_pod("checkout-cams", "retail", "kata-qemu-tdx"),
                                         "NodeNames": sorted(NODES)})
    by_node = {s["Host"]: s["Score"] for s in scores}
    assert by_node and max(by_node.values()) > 0
    assert max(by_node, key=by_node.get) in placed_nodes(doc, "retail/checkout-cams")
    verdicts = served.post("/filter", {"Pod": managed_pod("checkout-cams", "retail", "kata-qemu-tdx"),
                                       "NodeNames": sorted(NODES)})
    assert set(verdicts["NodeNames"]) <= {"spr-tdx-1", "spr-tdx-2"}


def test_the_plan_follows_nodes(live):
    api, served = live
    version = served.get("/plan")["plan_version"]
    added = copy.deepcopy(NODES["spr-tdx-2"])
    added["metadata"].update(name="spr-tdx-3", uid="uid-spr-tdx-3")
    api.emit("nodes", "ADDED", added)
    assert eventually(lambda: "spr-tdx-3" in {n["name"] for n in served.get("/plan")["nodes"]}), served.log()
    assert served.get("/plan")["plan_version"] > version

    victim = sorted(placed_nodes(served.get("/plan"), "retail/checkout-cams"))[0]
    cordoned = copy.deepcopy(NODES.get(victim, added))   # kubectl cordon: the plan moves off it
    cordoned["spec"]["unschedulable"] = True
    api.emit("nodes", "MODIFIED", cordoned)
    assert eventually(lambda: victim not in placed_nodes(served.get("/plan"), "retail/checkout-cams")), served.log()

    lost = copy.deepcopy(NODES["spr-tdx-1"])   # its TDX is no longer ready: rule label and device plugin gone
    del lost["metadata"]["labels"][TDX_READY]
    del lost["status"]["allocatable"]["tdx.intel.com/keys"]
    api.emit("nodes", "MODIFIED", lost)
    assert eventually(lambda: "spr-tdx-1" not in placed_nodes(served.get("/plan"), "retail/checkout-cams"))

    for name in ("spr-tdx-1", "spr-tdx-2", "spr-tdx-3"):
        api.emit("nodes", "DELETED", NODES.get(name, added))
    # no TDX node left: reported as unmet, never placed on a node without TDX
    assert eventually(lambda: next(w for w in served.get("/plan")["workloads"])["unmet_fps"] > 0), served.log()
    doc = served.get("/plan")
    assert placed_nodes(doc, "retail/checkout-cams") == set()
    assert any("TDX" in r or "tdx" in r for r in doc["workloads"][0]["reasons"]), doc["workloads"][0]["reasons"]


def test_the_plan_follows_scaled_objects(live):
    api, served = live
    scaled_objects = {o["metadata"]["name"]: o for o in recorded_list("scaledobjects")["items"]}
    deployment = copy.deepcopy(recorded_list("deployments")["items"][0])
    deployment["metadata"].update(name="parking-lpr", uid="uid-parking-lpr")
    deployment["spec"]["template"]["spec"].pop("runtimeClassName", None)
    parking = copy.deepcopy(scaled_objects["checkout-cams"])
    parking["metadata"].update(name="parking-lpr", uid="uid-so-parking-lpr")
    parking["spec"]["scaleTargetRef"]["name"] = "parking-lpr"
    parking["spec"]["triggers"][0]["metadata"].update(workload="parking-lpr", streams="12")
    api.emit("deployments", "ADDED", deployment)
    api.emit("scaledobjects", "ADDED", parking)
    assert eventually(lambda: "retail/parking-lpr" in {w["key"] for w in served.get("/plan")["workloads"]}), served.log()

    changed = copy.deepcopy(parking)                   # more streams: more replicas, no KEDA call needed
    changed["spec"]["triggers"][0]["metadata"]["streams"] = "120"
    before = next(w for w in served.get("/plan")["workloads"] if w["key"] == "retail/parking-lpr")["replicas"]
    api.emit("scaledobjects", "MODIFIED", changed)
    assert eventually(lambda: next(w for w in served.get("/plan")["workloads"]
                                   if w["key"] == "retail/parking-lpr")["replicas"] > before), served.log()

    broken = copy.deepcopy(changed)
    broken["spec"]["triggers"][0]["metadata"]["streams"] = "lots"
    api.emit("scaledobjects", "MODIFIED", broken)     # left out and reported; the others plan on
    assert eventually(lambda: [x["scaled_object"] for x in served.get("/plan")["inputs"]["left_out"]]
                      == ["retail/parking-lpr"]), json.dumps(served.get("/plan")["inputs"])
    assert [w["key"] for w in served.get("/plan")["workloads"]] == ["retail/checkout-cams"]

    api.emit("scaledobjects", "DELETED", scaled_objects["checkout-cams"])
    assert eventually(lambda: "retail/checkout-cams" not in {w["key"] for w in served.get("/plan")["workloads"]})
