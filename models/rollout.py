"""From a plan to what Kubernetes can do: it never moves a running pod.

A plan that puts a workload's replicas on other nodes than today's is reached by starting the new
ones first and then removing the old ones (make before break): while planned replicas are not
ready, the replica count asked of the HPA carries a surge of the pods still running off-plan.
On scale-down, `controller.kubernetes.io/pod-deletion-cost` tells the ReplicaSet controller which
pods to remove first: those on nodes holding more than the plan wants.

The surge is only worth asking for when that scale-down then removes the off-plan pods
(`surge_applies`): with the costs kept on the pods, and for a Deployment. Otherwise the
controller removes pods by its own order (the newest first among equals: often the planned ones
just started), the off-plan pods stay, and the next answer asks for the surge again: pods are
created and deleted over and over while nothing moves.
"""

from __future__ import annotations

from collections.abc import Mapping

DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"
STATEFUL_SET = "StatefulSet"


def surge_applies(deletion_cost_set: bool, target_kind: str | None) -> bool:
    """Whether a workload's answer may carry `desired_replicas`' surge: only when its pods carry
    the plan's pod-deletion costs (`deletion_cost`), so the scale-down after the surge removes the
    off-plan pods, and it is not a StatefulSet, whose controller always removes the highest
    ordinal and ignores deletion costs. `target_kind`: the ScaledObject's scaleTargetRef kind,
    None when unknown (KEDA's default kind, a Deployment, is assumed)."""
    return deletion_cost_set and target_kind != STATEFUL_SET


def desired_replicas(planned: int, planned_by_node: Mapping[str, int], running_by_node: Mapping[str, int],
                     ready_by_node: Mapping[str, int]) -> int:
    """Replicas to ask for: the plan's, plus the off-plan pods still covering for planned ones
    that are not ready yet (never more than either)."""
    off_plan = sum(max(0, n - planned_by_node.get(node, 0)) for node, n in running_by_node.items())
    not_ready = sum(max(0, n - ready_by_node.get(node, 0)) for node, n in planned_by_node.items())
    return planned + min(off_plan, not_ready)


def deletion_cost(node: str, planned_by_node: Mapping[str, int], running_by_node: Mapping[str, int]) -> int:
    """Pod-deletion cost for a pod on `node` (lower goes first): negative by how far the node is
    over the plan, positive by how much of the plan it holds."""
    excess = running_by_node.get(node, 0) - planned_by_node.get(node, 0)
    return -excess if excess > 0 else planned_by_node.get(node, 0)
