"""A pod's effective request and a node's reserved room, as kube-scheduler counts them."""

import copy
import json
from pathlib import Path

from wattwise.models.resources import Resources
from wattwise.models.room import pod_request, reserved_on_node, runtime_class_overheads

PODS = json.loads((Path(__file__).parents[1] / "scheduler" / "data" / "pods.json").read_text())
KATA_TDX = {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "kata-qemu-tdx"},
            "handler": "kata-qemu-tdx", "overhead": {"podFixed": {"cpu": "1", "memory": "2048Mi"}},
            "scheduling": {"nodeSelector": {"katacontainers.io/kata-runtime": "true"}}}
OVERHEADS = runtime_class_overheads([KATA_TDX, {"metadata": {"name": "runc"}}])


def test_recorded_kata_pod_counts_its_admitted_overhead():
    # the API server copied the RuntimeClass's overhead into spec.overhead at creation
    assert pod_request(PODS["managed_tdx"]["spec"]) == Resources(5000, 10240, 0)
    assert pod_request(PODS["managed_gpu_snp"]["spec"]) == Resources(9000, 34816, 1)


def test_a_template_gets_its_runtime_class_overhead():
    template = copy.deepcopy(PODS["managed_tdx"]["spec"])
    del template["overhead"]
    assert OVERHEADS == {"kata-qemu-tdx": Resources(1000, 2048, 0)}
    assert pod_request(template) == Resources(4000, 8192, 0)
    assert pod_request(template, OVERHEADS) == Resources(5000, 10240, 0)


def test_limits_only_init_containers_and_sidecars():
    spec = {"containers": [{"resources": {"limits": {"cpu": "2", "memory": "1Gi", "nvidia.com/gpu": "1"}}},
                           {"resources": {"requests": {"cpu": "500m"}}}],
            "initContainers": [{"resources": {"requests": {"cpu": "8", "memory": "512Mi"}}},          # plain: peak
                               {"restartPolicy": "Always", "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}}}]}
    # app + sidecar = 2750m / 1280Mi; the plain init container alone peaks at 8000m (before the sidecar starts)
    assert pod_request(spec) == Resources(8000, 1280, 1)


def test_reserved_counts_every_tenant_but_not_finished_pods():
    done = copy.deepcopy(PODS["unmanaged_plain"])
    done["status"] = {"phase": "Succeeded"}
    pods = [PODS["managed_tdx"], PODS["unmanaged_plain"], PODS["coco_unmanaged_snp"], done]
    expected = sum((pod_request(p["spec"]) for p in pods[:3]), Resources())
    assert reserved_on_node(pods) == expected
    assert expected.cpu_m > pod_request(PODS["managed_tdx"]["spec"]).cpu_m
