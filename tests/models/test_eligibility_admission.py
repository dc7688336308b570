"""Admission (taints, node selectors, required node affinity) is part of eligibility, so the planner
and the extender's filter refuse the same nodes: a CPU workload never lands on a tainted GPU node,
a tolerating one may. A cordon stays a soft reason."""

from __future__ import annotations

from dataclasses import replace

from wattwise.models.admission import Taint, TaintEffect, rules_from_pod_spec
from wattwise.models.cluster_nodes import ClusterNodes
from wattwise.models.eligibility import hard_reason, soft_reason
from wattwise.models.placement import NodeEntry, Outcome, Placement
from wattwise.models.planner import plan
from wattwise.models.pod_intent import PodKind, pod_intent
from wattwise.models.workload import Demand, Workload
from wattwise.models.workload_build import build_workload

from tests.models.builders import node, node_class, snapshot, workload
from tests.models.kube_fixtures import read_nodes, read_workloads

GPU_TAINT = Taint("nvidia.com/gpu", TaintEffect.NO_SCHEDULE, "present")
TOLERATES_GPU = rules_from_pod_spec({"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists",
                                                      "effect": "NoSchedule"}]})
TAINT_REASON = "node(s) had untolerated taint {nvidia.com/gpu=present: NoSchedule}"


def live_workloads() -> dict[str, Workload]:
    got = read_workloads()
    return {r.workload_key: build_workload(r, got.bases[r.workload_key], Demand(streams=4)) for r in got.requests}


def live_snapshot(nodes: ClusterNodes, workloads):
    return snapshot(list(nodes.node_classes.values()), list(nodes.nodes), list(workloads))


def test_cpu_workload_never_eligible_on_the_tainted_gpu_node_a_tolerating_one_is():
    nodes = read_nodes()
    gpu_node = next(n for n in nodes.nodes if n.name == "l40s-gpu-1")
    cls = nodes.node_classes[gpu_node.node_class]
    plain = Workload(name="plain-cams", namespace="retail")            # no tolerations, no TEE, no GPU
    gpu = live_workloads()["retail/lobby-gpu"]                          # tolerates nvidia.com/gpu
    snap = live_snapshot(nodes, [plain, gpu])
    reason = hard_reason(plain, gpu_node, cls, snap.model(plain, cls))
    assert reason == TAINT_REASON and reason.category == "taint"
    assert hard_reason(gpu, gpu_node, cls, snap.model(gpu, cls)) is None

    # the extender's filter answers the same, through the same rule
    result, _ = plan(snap)
    placement = Placement(snap, result)
    entries = {n.name: NodeEntry(n.name, "1", n, snap.node_classes[n.node_class]) for n in snap.nodes}
    for w, outcome in ((plain, Outcome.UNRESOLVABLE), (gpu, Outcome.PASSED)):
        pod = {"metadata": {"namespace": "retail", "labels": {"wattwise.io/workload": w.name}}, "spec": {}}
        intent = pod_intent(pod, placement.workloads)
        assert intent.kind is PodKind.MANAGED
        decision = placement.verdicts(intent, ["l40s-gpu-1"], entries)
        if outcome is Outcome.PASSED:
            assert decision.passed == ["l40s-gpu-1"]
        else:
            assert decision.unresolvable == {"l40s-gpu-1": TAINT_REASON}
            assert decision.tally == {(Outcome.UNRESOLVABLE, "taint"): 1}
    assert "l40s-gpu-1" not in result.workloads["retail/plain-cams"].by_node


def test_node_affinity_refuses_other_regions_before_the_tee_check():
    nodes = read_nodes()
    checkout = live_workloads()["retail/checkout-cams"]                 # TDX, regions eu-central-1 / uk-south-1
    snap = live_snapshot(nodes, [checkout])
    by_name = {n.name: n for n in nodes.nodes}
    milan = by_name["milan-snp-1"]                                      # us-west-1
    cls = nodes.node_classes[milan.node_class]
    reason = hard_reason(checkout, milan, cls, snap.model(checkout, cls))
    assert reason == "node(s) didn't match Pod's node affinity/selector" and reason.category == "node_affinity"
    tdx = by_name["spr-tdx-2"]                                          # uk-south-1, TDX ready
    assert hard_reason(checkout, tdx, nodes.node_classes[tdx.node_class],
                       snap.model(checkout, nodes.node_classes[tdx.node_class])) is None


def test_a_cordon_stays_a_soft_reason():
    nodes = read_nodes()
    checkout = live_workloads()["retail/checkout-cams"]
    cordoned = next(n for n in nodes.nodes if n.name == "spr-tdx-cordoned")   # tainted node.kubernetes.io/unschedulable
    cls = nodes.node_classes[cordoned.node_class]
    snap = live_snapshot(nodes, [checkout])
    assert hard_reason(checkout, cordoned, cls, snap.model(checkout, cls)) is None
    assert soft_reason(checkout, cordoned).category == "unschedulable"


def test_a_plan_never_places_a_non_tolerating_workload_on_a_tainted_node():
    gpu_cls, cpu_cls = node_class("gpu", cores=64, gpus=2), node_class("cpu", cores=8)
    gpu_node = replace(node("g1", gpu_cls), taints=(GPU_TAINT,))
    cams = workload("cams", fps=400.0, cpu=4)                           # more than the CPU node can serve
    untainted = plan(snapshot([gpu_cls, cpu_cls], [replace(gpu_node, taints=()), node("c1", cpu_cls)], [cams]))[0]
    assert untainted.workloads["default/cams"].by_node.get("g1", 0) > 0   # the GPU node's room is used when allowed
    tainted = plan(snapshot([gpu_cls, cpu_cls], [gpu_node, node("c1", cpu_cls)], [cams]))[0]
    wp = tainted.workloads["default/cams"]
    assert "g1" not in wp.by_node and "g1" not in wp.ranking and not wp.feasible
    tolerating = replace(cams, placement=TOLERATES_GPU)
    assert plan(snapshot([gpu_cls, cpu_cls], [gpu_node, node("c1", cpu_cls)], [tolerating]))[0] \
        .workloads["default/cams"].by_node.get("g1", 0) > 0


def test_grouped_nodes_are_split_by_what_they_admit():
    """At 48 schedulable nodes and more, nodes of one class share groups: tainted and untainted
    ones must not, or a group judged by its first node would admit or refuse them all."""
    cls = node_class("cpu", cores=32)
    nodes = [replace(node(f"a{i:02d}", cls), taints=(GPU_TAINT,)) for i in range(30)]   # sorted first by name
    nodes += [node(f"b{i:02d}", cls) for i in range(30)]
    plain = workload("plain", fps=1e6, cpu=32)                          # one replica per node; never enough
    on_plain = plan(snapshot([cls], nodes, [plain]))[0].workloads["default/plain"].by_node
    assert sorted(on_plain) == [f"b{i:02d}" for i in range(30)]        # every untainted node, no tainted one
    tolerant = replace(plain, placement=TOLERATES_GPU)
    assert len(plan(snapshot([cls], nodes, [tolerant]))[0].workloads["default/plain"].by_node) == 60


def test_a_taint_change_is_a_change_of_the_plans_inputs():
    from wattwise.models.replan import PlanInputs

    cls = node_class("gpu", cores=64, gpus=2)
    before = snapshot([cls], [node("g1", cls)], [workload("cams")])
    after = replace(before, nodes=(replace(before.nodes[0], taints=(GPU_TAINT,)),))
    assert PlanInputs.of(before).change(PlanInputs.of(after)) == "nodes-changed"
