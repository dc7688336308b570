"""Which Confidential Containers RuntimeClasses keep their pods on nodes with their TEE without the
scheduler extender: their scheduling.nodeSelector must name the TEE's node label."""

import copy

from tests.models.kube_fixtures import read_nodes, runtime_classes
from wattwise.models.labels import runtime_class_tee_gaps


def kata_deploy(name: str, extra: dict | None = None) -> dict:
    """A RuntimeClass as kata-deploy installs it: selecting Kata nodes, TEE or not."""
    return {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": name}, "handler": name,
            "overhead": {"podFixed": {"cpu": "1", "memory": "2048Mi"}},
            "scheduling": {"nodeSelector": {"katacontainers.io/kata-runtime": "true", **(extra or {})}}}


def test_kata_deploy_s_classes_do_not_keep_pods_on_tee_nodes():
    gaps = runtime_class_tee_gaps([kata_deploy("kata-qemu-tdx"), kata_deploy("kata-qemu-snp"),
                                   kata_deploy("kata-qemu-nvidia-gpu-tdx"), kata_deploy("kata-qemu-coco-dev"),
                                   kata_deploy("kata-remote"), kata_deploy("runc-like")])
    assert [g.split(":")[0] for g in gaps] == ["RuntimeClass kata-qemu-tdx", "RuntimeClass kata-qemu-snp",
                                              "RuntimeClass kata-qemu-nvidia-gpu-tdx"]
    assert gaps[0] == ("RuntimeClass kata-qemu-tdx: scheduling.nodeSelector does not select nodes with tdx, so while "
                       "the scheduler extender is down or skipped (ignorable) its pods can land on nodes without it; "
                       "add the TEE's node label (deploy/examples/runtimeclass-tee-selectors/)")
    assert "nvidia-cc and tdx" in gaps[2]


def test_a_tee_label_in_the_node_selector_closes_the_gap():
    assert runtime_class_tee_gaps([
        kata_deploy("kata-qemu-tdx", {"intel.feature.node.kubernetes.io/tdx": "true"}),
        kata_deploy("kata-qemu-snp", {"amd.feature.node.kubernetes.io/snp": "true"}),
        kata_deploy("kata-qemu-nvidia-gpu-snp", {"amd.feature.node.kubernetes.io/snp": "true",
                                                 "nvidia.com/cc.mode": "on"})]) == []
    off = kata_deploy("kata-qemu-tdx", {"intel.feature.node.kubernetes.io/tdx": "false"})
    assert len(runtime_class_tee_gaps([off])) == 1


def test_the_shipped_selectors_close_every_gap_and_the_recorded_cluster_reports_its_own():
    """deploy/examples/runtimeclass-tee-selectors patches kata-deploy's classes; applied as a JSON
    merge patch (what `kubectl patch --type merge` does), none is left open."""
    import json
    import pathlib

    folder = pathlib.Path(__file__).resolve().parents[2] / "deploy" / "examples" / "runtimeclass-tee-selectors"
    patches = {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}
    assert set(patches) >= {"kata-qemu-tdx", "kata-qemu-snp", "kata-qemu-nvidia-gpu-tdx", "kata-qemu-nvidia-gpu-snp"}
    patched = []
    for name, patch in patches.items():
        rc = copy.deepcopy(kata_deploy(name))
        rc["scheduling"]["nodeSelector"].update(patch["scheduling"]["nodeSelector"])
        patched.append(rc)
    assert runtime_class_tee_gaps(patched) == []
    recorded = read_nodes()                          # its RuntimeClasses carry no scheduling at all
    assert [g.split(":")[0] for g in recorded.tee_gaps] == ["RuntimeClass kata-qemu-tdx", "RuntimeClass kata-qemu-snp"]
    assert len(runtime_classes()) == 3
