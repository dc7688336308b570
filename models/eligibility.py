"""Hard constraints: can this workload ever run on this node? Shared by the planner and the
scheduler extender's filter, so the two never disagree. Reasons are written for humans, and each
carries a short category for counting (the extender's metrics), set where it is written.

A reason says what is true of a kind of node, never of one node in particular, in the words of
kube-scheduler's own ("node(s) didn't match Pod's node affinity/selector"): the FailedScheduling
event counts nodes per distinct reason, "0/5000 nodes are available: 3750 node(s) lack TEE tdx,
...". A reason naming one node's free room or name would be a line of its own per node, and a
comma inside a reason would read as the start of the next one.

Admission (kube-scheduler's own NodeAffinity and TaintToleration filters: the workload's
nodeSelector, required node affinity and tolerations against the node's labels and taints) is a
hard reason. A cordon stays a soft one (`soft_reason`, from `Node.schedulable`, as before), and
the taints Kubernetes sets from a node's condition (`node.kubernetes.io/unschedulable`,
`not-ready`, `memory-pressure`, ...) are not hard reasons: they say what the node is now, not what
it may run (kube-scheduler's own filters still apply them)."""

from __future__ import annotations

from wattwise.models.admission import PlacementRules, admission_reason, is_condition_taint
from wattwise.models.cluster import Node, NodeClass
from wattwise.models.energy import WorkloadClassModel
from wattwise.models.reason import Reason
from wattwise.models.tee import Confidentiality
from wattwise.models.workload import Workload

__all__ = ["Reason", "hard_reason", "placement_reason", "soft_reason", "tee_reason"]


def tee_reason(requirement: Confidentiality, node: Node, node_class: NodeClass) -> Reason | None:
    """Why a node's TEE does not satisfy a requirement, or None when it does."""
    if requirement.allows(node.tee_ready):
        return None
    needed = requirement.describe()
    present = {k for opt in requirement.any_of for k in opt} & node_class.tee_kinds
    if present and any(opt <= node_class.tee_kinds for opt in requirement.any_of):
        missing = sorted(k.value for k in present - node.tee_ready)
        return Reason(f"node(s) have TEE {' and '.join(missing)} not ready (driver/attestation/device plugin)",
                      "tee_not_ready")
    return Reason(f"node(s) lack TEE {needed}", "tee_missing")


def placement_reason(rules: PlacementRules, node: Node) -> Reason | None:
    """Why kube-scheduler's filters refuse the node to pods with these rules for good (untolerated
    taint, node selector or affinity), or None. Condition taints and the cordon are left out."""
    taints = tuple(t for t in node.taints if not is_condition_taint(t))
    if not taints and not rules.node_selector and rules.required_terms is None:
        return None
    return admission_reason(rules, node.name, dict(node.labels), taints)


def hard_reason(workload: Workload, node: Node, node_class: NodeClass,
                model: WorkloadClassModel | None) -> Reason | None:
    """None when the node can host the workload at all; otherwise why not (preemption cannot help)."""
    reason = placement_reason(workload.placement, node) or tee_reason(workload.confidentiality, node, node_class)
    if reason:
        return reason
    if workload.needs_gpu and node_class.gpu_count < workload.footprint.gpu:
        return Reason(f"node(s) of class {node_class.name} have {node_class.gpu_count} GPU(s); the pod needs "
                      f"{workload.footprint.gpu}", "accelerator")
    if model is None or model.capacity_fps <= 0:
        if not workload.needs_gpu and workload.footprint.cpu_m <= 0:
            # a prior's capacity is the replica's cores x the model's fps per core: no cores, no prior
            return Reason(f"no capacity known for model {workload.model_type} on class {node_class.name}: the "
                          "replica requests no CPU, so no prior applies; set its CPU request (`cpu` in the "
                          "trigger metadata) or fit a model for the pair", "sla")
        return Reason(f"node(s) of class {node_class.name} cannot run model {workload.model_type} (no energy model)",
                      "sla")
    rtt_ms, trip = 0.0, ""
    if workload.reach is not None:
        reached = workload.reach.rtt_to(node.zone)
        if reached is None:
            return Reason(f"node(s) in zone {node.zone} are not reachable from zone {workload.reach.origin_zone} "
                          "where the pod's streams come from", "network")
        rtt_ms = reached
        trip = f" plus {rtt_ms:.0f} ms round trip from zone {workload.reach.origin_zone}" if rtt_ms else ""
    if model.frame_time_ms() + rtt_ms > workload.sla.latency_ms:
        return Reason(f"node(s) of class {node_class.name}{' in zone ' + node.zone if rtt_ms else ''} take "
                      f"{model.frame_time_ms():.0f} ms per frame{trip} (the pod's latency bound is "
                      f"{workload.sla.latency_ms:.0f} ms)", "sla")
    if not workload.footprint.fits_in(node.allocatable):
        return Reason(f"node(s) too small for one replica ({workload.footprint.describe()})", "node_too_small")
    return None


def soft_reason(workload: Workload, node: Node, used_by_us=None) -> Reason | None:
    """Not enough free room right now (may change; preemption or scale-down can help)."""
    room = node.free if used_by_us is None else node.free - used_by_us
    if not workload.footprint.fits_in(room):
        return Reason(f"node(s) lack free room for one replica now ({workload.footprint.describe()})", "capacity")
    if not node.schedulable:
        return Reason("node(s) not schedulable (cordoned or not Ready)", "unschedulable")
    return None
