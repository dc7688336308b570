"""Property: over random clusters and pods, a confidential pod is never left with a node whose
TEE it does not allow, in names mode or full-node mode, managed by WattWise or not."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wattwise.models.labels import node_from_k8s, pod_confidentiality
from wattwise.models.tee import COCO_RUNTIME_CLASSES
from wattwise.scheduler.node_cache import StaticNodeCache
from wattwise.scheduler.server import start_extender

from .helpers import args_names, args_nodes, passed_names, post

NFD = "feature.node.kubernetes.io/"
WORKLOADS = ["retail/checkout-cams", "retail/parking-lpr", "security/badge-readers", "analytics/footfall-counter",
             "city/city-traffic", "retail/not-planned-yet"]


class SwappableCache:
    """A static cache whose nodes each example replaces."""

    def __init__(self):
        self.inner = StaticNodeCache.from_node_json([])

    def nodes(self):
        return self.inner.nodes()

    ready = True

    def status(self):
        return self.inner.status()

    def sync_age_s(self):
        return 0.0

    def stale(self):
        return ""


@st.composite
def node_json(draw, i: int):
    labels = {"kubernetes.io/hostname": f"n{i}", "topology.kubernetes.io/zone": draw(st.sampled_from(
        ["eu-central-1a", "uk-south-1a", "us-west-1a", "elsewhere"]))}
    alloc = {"cpu": draw(st.sampled_from(["1", "8", "63500m", "111500m"])), "memory": draw(st.sampled_from(["4Gi", "64Gi", "500Gi"])),
             "pods": "110"}
    if draw(st.booleans()):
        labels[NFD + "cpu-security.tdx.enabled"] = "true"
        if draw(st.booleans()):
            labels["intel.feature.node.kubernetes.io/tdx"] = draw(st.sampled_from(["true", "false"]))
        if draw(st.booleans()):
            alloc["tdx.intel.com/keys"] = draw(st.sampled_from(["0", "16"]))
    if draw(st.booleans()):
        labels[NFD + "cpu-security.sev.snp.enabled"] = "true"
        if draw(st.booleans()):
            labels["amd.feature.node.kubernetes.io/snp"] = "true"
        if draw(st.booleans()):
            alloc["sev-snp.amd.com/esids"] = draw(st.sampled_from(["0", "509"]))
    if draw(st.booleans()):
        labels[NFD + "cpu-security.sgx.enabled"] = "true"
        if draw(st.booleans()):
            alloc["sgx.intel.com/epc"] = "137438953472"
    if draw(st.booleans()):
        labels[NFD + "cpu-cpuid.AMXTILE"] = "true"
    if draw(st.booleans()):
        alloc["nvidia.com/gpu"] = draw(st.sampled_from(["1", "4"]))
        labels["nvidia.com/gpu.product"] = "NVIDIA-H100-80GB-HBM3"
        labels["nvidia.com/cc.mode"] = draw(st.sampled_from(["on", "off", "devtools"]))
        if draw(st.booleans()):
            labels["nvidia.com/cc.ready.state"] = "true"
    if draw(st.booleans()):
        labels["wattwise.io/node-class"] = draw(st.sampled_from(["spr-amx-tdx", "milan-snp", "h100-cc", "clx-plain"]))
    ready = draw(st.sampled_from(["True", "True", "False"]))
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": f"n{i}", "labels": labels, "resourceVersion": str(draw(st.integers(1, 10**6)))},
            "spec": {"unschedulable": draw(st.booleans())},
            "status": {"allocatable": alloc, "capacity": alloc, "conditions": [{"type": "Ready", "status": ready}]}}


@st.composite
def cluster(draw):
    n = draw(st.integers(1, 12))
    return {"apiVersion": "v1", "kind": "NodeList", "metadata": {"resourceVersion": "1"},
            "items": [draw(node_json(i)) for i in range(n)]}


@st.composite
def pod_json(draw):
    labels, annotations, spec = {}, {}, {"containers": [{"name": "c", "resources": {"requests": {"cpu": "2"}}}]}
    rc = draw(st.sampled_from([None, "runc", *sorted(COCO_RUNTIME_CLASSES)]))
    if rc:
        spec["runtimeClassName"] = rc
    if draw(st.booleans()):
        labels["wattwise.io/workload"] = draw(st.sampled_from(WORKLOADS))
    tee = draw(st.sampled_from([None, "tdx", "sev-snp", "sgx", "tdx,sev-snp", "sev-snp+nvidia-cc", "none"]))
    if tee:
        (annotations if draw(st.booleans()) else labels)["wattwise.io/tee"] = tee
    return {"metadata": {"name": "p", "namespace": draw(st.sampled_from(["retail", "default"])), "labels": labels,
                         "annotations": annotations}, "spec": spec}


@pytest.fixture(scope="module")
def server(source):
    cache = SwappableCache()
    handle = start_extender(source, "127.0.0.1", 0, cache)
    yield handle, cache, source
    handle.stop(2.0)


def allowed(requirement, node_obj) -> bool:
    node, _ = node_from_k8s(node_obj)
    return requirement.allows(node.tee_ready)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(nodes=cluster(), pod=pod_json(), names_mode=st.booleans())
def test_confidential_pod_never_left_with_a_node_whose_tee_it_does_not_allow(server, nodes, pod, names_mode):
    handle, cache, source = server
    cache.inner = StaticNodeCache.from_node_json(nodes["items"])
    names = [n["metadata"]["name"] for n in nodes["items"]]
    body = args_names(pod, names) if names_mode else args_nodes(pod, nodes)
    status, reply = post(handle.url + "/filter", body)
    assert status == 200
    by_name = {n["metadata"]["name"]: n for n in nodes["items"]}
    requirements = []
    rc = pod["spec"].get("runtimeClassName")
    label = pod["metadata"]["labels"].get("wattwise.io/workload")
    asks_tee = "wattwise.io/tee" in pod["metadata"].get("annotations", {}) or "wattwise.io/tee" in pod["metadata"]["labels"]
    if rc in COCO_RUNTIME_CLASSES or label or asks_tee:      # a pod asking for a TEE in any way gets the check
        requirements.append(pod_confidentiality(pod)[0])
    if label:
        ns = pod["metadata"]["namespace"]
        key = label if "/" in label else f"{ns}/{label}"
        workload = next((w for w in source.current().snapshot.workloads if w.key == key), None)
        if workload is not None:
            requirements.append(workload.confidentiality)
    for name in passed_names(reply):
        for requirement in requirements:
            assert allowed(requirement, by_name[name]), (name, requirement.describe())
    if not requirements:  # not ours and not confidential: untouched
        assert passed_names(reply) == names


def test_a_repeated_request_is_answered_again_after_the_nodes_change(server):
    """The placement memo follows the node map: a TEE that stops being ready is seen at once."""
    handle, cache, _ = server
    node = {"metadata": {"name": "n0", "resourceVersion": "1", "labels": {
        NFD + "cpu-security.tdx.enabled": "true", "intel.feature.node.kubernetes.io/tdx": "true"}},
        "status": {"allocatable": {"cpu": "64", "memory": "256Gi"}, "conditions": [{"type": "Ready", "status": "True"}]}}
    pod = {"metadata": {"name": "p"}, "spec": {"runtimeClassName": "kata-qemu-tdx"}}
    cache.inner = StaticNodeCache.from_node_json([node])
    for _ in range(2):
        assert passed_names(post(handle.url + "/filter", args_names(pod, ["n0"]))[1]) == ["n0"]
    del node["metadata"]["labels"]["intel.feature.node.kubernetes.io/tdx"]
    cache.inner = StaticNodeCache.from_node_json([node])
    _, reply = post(handle.url + "/filter", args_names(pod, ["n0"]))
    assert passed_names(reply) == [] and "not ready" in reply["FailedAndUnresolvableNodes"]["n0"]
