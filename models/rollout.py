"""From a plan to what Kubernetes can do: it never moves a running pod.

A plan that puts a workload's replicas on other nodes than today's is reached by starting the new
ones first and then removing the old ones (make before break): while planned replicas are not
ready, the replica count asked of the HPA keeps every pod running and adds the planned ones that
have no pod yet; once all are ready, it is the plan's count.
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
    """Replicas to ask for. Every planned slot ready: the plan's count (the scale-down then removes
    the pods over the plan, by their deletion costs). Otherwise nothing is removed: the pods that
    run now, plus one for each planned slot with no pod yet (never fewer than the plan's count).

    The HPA only moves one count, and the ReplicaSet controller removes pods that are not ready
    before any other: an answer that shrank while planned pods were starting removed the starting
    ones, and one at or below the count running created none (B:3 running, plan A:1 answered 2,
    and stayed at B:2). A new pod that lands off the plan's nodes (no room there) is not asked
    for again while it starts, so a plan the cluster cannot follow adds one pod per start-up at
    most, until the next plan takes in where pods run."""
    not_ready = sum(max(0, n - ready_by_node.get(node, 0)) for node, n in planned_by_node.items())
    if not not_ready:
        return planned
    missing = sum(max(0, n - running_by_node.get(node, 0)) for node, n in planned_by_node.items())
    starting_off_plan = 0
    for node, running in running_by_node.items():
        starting = running - min(ready_by_node.get(node, 0), running)
        open_slots = max(0, planned_by_node.get(node, 0) - ready_by_node.get(node, 0))
        starting_off_plan += max(0, starting - open_slots)
    running_total = sum(running_by_node.values())
    return max(planned, running_total + max(0, missing - starting_off_plan))


def deletion_cost(node: str, planned_by_node: Mapping[str, int], running_by_node: Mapping[str, int]) -> int:
    """Pod-deletion cost for a pod on `node` (lower goes first): negative by how far the node is
    over the plan, positive by how much of the plan it holds."""
    excess = running_by_node.get(node, 0) - planned_by_node.get(node, 0)
    return -excess if excess > 0 else planned_by_node.get(node, 0)
