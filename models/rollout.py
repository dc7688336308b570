"""From a plan to what Kubernetes can do: it never moves a running pod.

A plan that puts a workload's replicas on other nodes than today's is reached by starting the new
ones first and then removing the old ones (make before break): while planned replicas are not
ready, the replica count asked of the HPA carries a surge of the pods still running off-plan.
On scale-down, `controller.kubernetes.io/pod-deletion-cost` tells the ReplicaSet controller which
pods to remove first: those on nodes holding more than the plan wants.
"""

from __future__ import annotations

from collections.abc import Mapping

DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"


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
