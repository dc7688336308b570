"""Hard constraints: can this workload ever run on this node? Shared by the planner and the
scheduler extender's filter, so the two never disagree. Reasons are written for humans."""

from __future__ import annotations

from wattwise.models.cluster import Node, NodeClass
from wattwise.models.energy import WorkloadClassModel
from wattwise.models.tee import Confidentiality
from wattwise.models.workload import Workload


def tee_reason(requirement: Confidentiality, node: Node, node_class: NodeClass) -> str | None:
    """Why a node's TEE does not satisfy a requirement, or None when it does."""
    if requirement.allows(node.tee_ready):
        return None
    needed = requirement.describe()
    present = {k for opt in requirement.any_of for k in opt} & node_class.tee_kinds
    if present and any(opt <= node_class.tee_kinds for opt in requirement.any_of):
        missing = sorted(k.value for k in present - node.tee_ready)
        return f"pod needs TEE {needed}; node has {', '.join(missing)} but it is not ready (driver, attestation or device plugin)"
    have = ", ".join(sorted(k.value for k in node_class.tee_kinds)) or "none"
    return f"pod needs TEE {needed}; node has {have}"


def hard_reason(workload: Workload, node: Node, node_class: NodeClass,
                model: WorkloadClassModel | None) -> str | None:
    """None when the node can host the workload at all; otherwise why not (preemption cannot help)."""
    reason = tee_reason(workload.confidentiality, node, node_class)
    if reason:
        return reason
    if workload.needs_gpu and node_class.gpu_count < workload.footprint.gpu:
        return f"pod needs {workload.footprint.gpu} GPU(s); node class {node_class.name} has {node_class.gpu_count}"
    if model is None or model.capacity_fps <= 0:
        return f"no energy model: node class {node_class.name} cannot run model {workload.model_type}"
    if model.frame_time_ms() > workload.sla.latency_ms:
        return (f"node class {node_class.name} takes {model.frame_time_ms():.0f} ms per frame, over the "
                f"{workload.sla.latency_ms:.0f} ms latency bound")
    if not workload.footprint.fits_in(node.allocatable):
        return f"one replica needs {workload.footprint}; node allocatable is {node.allocatable}"
    return None


def soft_reason(workload: Workload, node: Node, used_by_us=None) -> str | None:
    """Not enough free room right now (may change; preemption or scale-down can help)."""
    room = node.free if used_by_us is None else node.free - used_by_us
    if not workload.footprint.fits_in(room):
        return f"not enough free capacity now: needs {workload.footprint}, free {room}"
    if not node.schedulable:
        return "node is not schedulable (cordoned or not Ready)"
    return None
