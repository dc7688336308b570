"""Kubernetes Node and Pod JSON (shaped as the API returns them) to core values."""

import pytest

from wattwise.models.labels import LabelMapping, node_from_k8s, pod_confidentiality, pod_resources
from wattwise.models.tee import TeeKind

NFD = "feature.node.kubernetes.io/"


def k8s_node(name, labels, allocatable=None, ready="True", unschedulable=False):
    alloc = {"cpu": "95500m", "memory": "515000Mi", "pods": "110", **(allocatable or {})}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **labels}},
            "spec": {"unschedulable": unschedulable} if unschedulable else {},
            "status": {"capacity": {"cpu": "96", "memory": "527988104Ki", "pods": "110", **(allocatable or {})},
                       "allocatable": alloc,
                       "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": ready}]}}


def test_tdx_amx_node_with_coco_rule_label_is_ready():
    n, c = node_from_k8s(k8s_node("spr-1", {
        NFD + "cpu-security.tdx.enabled": "true", "intel.feature.node.kubernetes.io/tdx": "true",
        NFD + "cpu-cpuid.AMXTILE": "true", NFD + "cpu-cpuid.AMXBF16": "true",
        NFD + "cpu-model.vendor_id": "Intel", "topology.kubernetes.io/zone": "eu-central-1a"},
        {"tdx.intel.com/keys": "15"}))
    assert c.amx and c.tee_kinds == {TeeKind.TDX} and n.tee_ready == {TeeKind.TDX}
    assert n.zone == "eu-central-1a" and n.allocatable.cpu_m == 95500 and n.allocatable.memory_mib == 515000


def test_tee_labelled_but_not_ready_without_rule_label_or_resource():
    n, c = node_from_k8s(k8s_node("snp-1", {NFD + "cpu-security.sev.snp.enabled": "true"}))
    assert c.tee_kinds == {TeeKind.SEV_SNP} and n.tee_ready == frozenset()
    n, _ = node_from_k8s(k8s_node("snp-2", {NFD + "cpu-security.sev.snp.enabled": "true"}, {"sev-snp.amd.com/esids": "509"}))
    assert n.tee_ready == {TeeKind.SEV_SNP}


def test_sgx_ready_from_epc_resource_and_not_ready_node_has_no_tee():
    labels = {NFD + "cpu-security.sgx.enabled": "true"}
    n, _ = node_from_k8s(k8s_node("icx-1", labels, {"sgx.intel.com/epc": "137438953472"}))
    assert n.tee_ready == {TeeKind.SGX}
    n, _ = node_from_k8s(k8s_node("icx-2", labels, {"sgx.intel.com/epc": "137438953472"}, ready="False"))
    assert n.tee_ready == frozenset() and not n.schedulable


def test_confidential_gpu_node():
    n, c = node_from_k8s(k8s_node("h100-1", {
        "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu.count": "4", "nvidia.com/cc.mode": "on",
        "nvidia.com/cc.ready.state": "true", NFD + "cpu-security.sev.snp.enabled": "true",
        "amd.feature.node.kubernetes.io/snp": "true"}, {"nvidia.com/gpu": "4"}))
    assert c.gpu_count == 4 and c.gpu_product == "NVIDIA-H100-80GB-HBM3"
    assert n.tee_ready == {TeeKind.SEV_SNP, TeeKind.NVIDIA_CC} and n.allocatable.gpu == 4


def test_gpus_pods_may_use_come_from_allocatable_only():
    """Unhealthy GPUs (capacity 8, allocatable 0) or a device plugin not registered yet (only
    GPU feature discovery's count): the class has 8 GPUs, the node none to place replicas on."""
    gfd = {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu.count": "8"}
    unhealthy = k8s_node("h100-2", gfd, {"nvidia.com/gpu": "0"})
    unhealthy["status"]["capacity"]["nvidia.com/gpu"] = "8"
    for obj in (unhealthy, k8s_node("h100-3", gfd)):
        n, c = node_from_k8s(obj)
        assert c.gpu_count == 8 and n.allocatable.gpu == 0, obj["metadata"]["name"]


def test_class_label_override_and_custom_mapping():
    n, c = node_from_k8s(k8s_node("x", {"wattwise.io/node-class": "gold", "example.com/tdx": "yes"}),
                         LabelMapping(tee_labels={TeeKind.TDX: ("example.com/tdx",)},
                                      tee_ready_labels={TeeKind.TDX: ("example.com/tdx",)}))
    assert c.name == "gold" and n.tee_ready == {TeeKind.TDX}


@pytest.mark.parametrize("runtime_class, allowed, is_coco", [
    ("kata-qemu-tdx", [{TeeKind.TDX}], True),
    ("kata-qemu-snp", [{TeeKind.SEV_SNP}], True),
    ("kata-qemu-nvidia-gpu-tdx", [{TeeKind.TDX, TeeKind.NVIDIA_CC}], True),
    ("kata-qemu-coco-dev", [], True),
    ("kata-cc-intel", [{TeeKind.TDX}], True),          # OpenShift sandboxed containers' names
    ("kata-cc-amd", [{TeeKind.SEV_SNP}], True),
    ("runc", [], False),
    (None, [], False),
])
def test_pod_runtime_class_requirement(runtime_class, allowed, is_coco):
    pod = {"metadata": {"name": "p"}, "spec": {"runtimeClassName": runtime_class, "containers": []}}
    conf, coco = pod_confidentiality(pod)
    assert {frozenset(o) for o in conf.any_of} == {frozenset(o) for o in allowed} and coco == is_coco


def test_pod_annotation_allows_either_tee_and_resources_include_overhead():
    pod = {"metadata": {"annotations": {"wattwise.io/tee": "tdx,sev-snp"}},
           "spec": {"containers": [{"resources": {"requests": {"cpu": "3500m", "memory": "6Gi"}}}],
                    "overhead": {"cpu": "1", "memory": "2048Mi"}}}
    conf, coco = pod_confidentiality(pod)
    assert conf.allows(frozenset({TeeKind.SEV_SNP})) and conf.allows(frozenset({TeeKind.TDX})) and not coco
    assert not conf.allows(frozenset({TeeKind.SGX}))
    r = pod_resources(pod)
    assert (r.cpu_m, r.memory_mib) == (4500, 8192)


@pytest.mark.parametrize("count", ["1e400", "inf", "-Infinity", "nan"])
@pytest.mark.parametrize("where", ["gpu resource", "tee resource", "gpu label"])
def test_a_non_finite_device_count_is_a_value_error_the_callers_catch(where, count):
    """Found by tests/fuzz (a NodeList sent to the extender): int(float("1e400")) raised
    OverflowError, which no caller of node_from_k8s catches (the extender answered HTTP 500)."""
    labels = {NFD + "cpu-security.tdx.enabled": "true"}
    alloc = {}
    if where == "gpu label":
        labels["nvidia.com/gpu.count"] = count
    else:
        alloc["nvidia.com/gpu" if where == "gpu resource" else "tdx.intel.com/keys"] = count
    with pytest.raises(ValueError, match="finite|NaN"):
        node_from_k8s(k8s_node("n1", labels, alloc))
