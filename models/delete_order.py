"""Which pods go first when a workload scales down: the ReplicaSet controller's own order, and
the `controller.kubernetes.io/pod-deletion-cost` the plan gives each pod to steer it.

The order is Kubernetes' `ActivePodsWithRanks.Less` (pkg/controller/controller_utils.go), with
the ranks of `getPodsRankedByRelatedPodsOnSameNode` (pkg/controller/replicaset/replica_set.go)
and the PodDeletionCost and LogarithmicScaleDown features on (their default since 1.22):

1. not assigned to a node before assigned;
2. phase Pending before Unknown before Running;
3. not ready before ready;
4. lower pod-deletion-cost before higher (absent: 0);
5. more active pods of the set on the same node before fewer ("doubled up");
6. both ready: the one ready more recently first, compared by the power of two of the time
   since (same power of two: the lower UID first; no ready time: first);
7. more container restarts before fewer;
8. newer before older, compared as in 6 (no creation time: first).

So a deletion cost only orders ready pods among themselves: the controller removes every pod
still starting (attesting, loading its model) before any ready one, whatever its cost. Pods alike
in all of the above keep the order they are given (Kubernetes leaves them in no defined order).
The controller sorts once and deletes the first `diff` pods; the ranks are those before it starts.
"""

from __future__ import annotations

import enum
import math
from collections import Counter
from dataclasses import dataclass, replace
from functools import cmp_to_key
from typing import Mapping, Sequence

from wattwise.models.rollout import deletion_cost


class PodPhase(enum.StrEnum):
    PENDING = "Pending"
    UNKNOWN = "Unknown"
    RUNNING = "Running"


_PHASE_ORDINAL = {PodPhase.PENDING: 0, PodPhase.UNKNOWN: 1, PodPhase.RUNNING: 2}


@dataclass(frozen=True)
class ScaleDownPod:
    """An active pod of the workload's ReplicaSet, as the controller compares it. Times are
    seconds on the caller's clock (None: not known, as a zero time in Kubernetes)."""

    node: str = ""                    # "": not assigned to a node yet
    phase: PodPhase = PodPhase.RUNNING
    ready: bool = True
    deletion_cost: int = 0
    ready_since_s: float | None = None
    restarts: int = 0
    created_s: float | None = None
    uid: str = ""


def deletion_order(pods: Sequence[ScaleDownPod], now_s: float | None = None) -> list[int]:
    """Indices of `pods` (all the active pods of one ReplicaSet) in the order the ReplicaSet
    controller deletes them on scale-down. `now_s`: the time now, for rule 6 (None: exact ready
    times are compared)."""
    on_node = Counter(p.node for p in pods)
    if all(p.ready_since_s is None and p.created_s is None for p in pods):
        return _by_key(pods, on_node)

    def less(a: int, b: int) -> bool:
        return _less(pods[a], pods[b], on_node[pods[a].node], on_node[pods[b].node], now_s)

    def compare(a: int, b: int) -> int:
        return -1 if less(a, b) else (1 if less(b, a) else 0)

    return sorted(range(len(pods)), key=cmp_to_key(compare))


def _by_key(pods: Sequence[ScaleDownPod], on_node: Counter) -> list[int]:
    """`deletion_order` for pods with no ready or creation times (as the simulator lists them):
    `_less` then compares rules 1 to 5 and 7 alone, a plain lexicographic key, so a stable sort by
    that key gives the very order the comparator does, at a key per pod instead of two `_less`
    calls per comparison (a scale-down of hundreds of pods took milliseconds). Pods are often one
    object listed many times: each object's key is worked out once."""
    keys: dict[int, tuple] = {}

    def key(p: ScaleDownPod) -> tuple:
        k = keys.get(id(p))
        if k is None:
            k = keys[id(p)] = (bool(p.node), _PHASE_ORDINAL.get(p.phase, 0), p.ready, p.deletion_cost,
                               -on_node[p.node], -p.restarts)
        return k

    return sorted(range(len(pods)), key=lambda i: key(pods[i]))


def pods_to_delete(pods: Sequence[ScaleDownPod], k: int, now_s: float | None = None) -> list[int]:
    """Indices of the `k` pods a scale-down by `k` deletes, first to go first."""
    return deletion_order(pods, now_s)[:max(0, k)]


def planned_deletion_costs(pods: Sequence[ScaleDownPod], planned_by_node: Mapping[str, int]) -> list[int]:
    """The pod-deletion-cost the plan gives each pod of a workload (all its active pods), so that
    on scale-down the pods over the plan go first and only they: on a node holding k more than the
    plan wants, the k pods the controller itself would delete first there (its order without
    costs: starting, not ready, more recently ready, newer) get -k (`rollout.deletion_cost`: the
    further over, the sooner); every other pod the plan's count on its node.

    Per pod, not per node: with one cost for every pod of an over-plan node, the controller's own
    tie-breaks (the newest pods first) could take two pods from a node one over the plan and leave
    another node over it, and the next surge would start a replica to move back."""
    running = Counter(p.node for p in pods)
    left = {node: n - planned_by_node.get(node, 0) for node, n in running.items()}   # pods still to mark
    costs = [planned_by_node.get(p.node, 0) for p in pods]
    uncosted: dict[int, ScaleDownPod] = {}     # one object per object given (pods alike are often one)
    for i in deletion_order([uncosted.get(id(p)) or uncosted.setdefault(id(p), replace(p, deletion_cost=0))
                             for p in pods]):
        node = pods[i].node
        if left.get(node, 0) > 0:
            costs[i] = deletion_cost(node, planned_by_node, running)      # -k
            left[node] -= 1
    return costs


def _less(a: ScaleDownPod, b: ScaleDownPod, rank_a: int, rank_b: int, now_s: float | None) -> bool:
    if a.node != b.node and (not a.node or not b.node):
        return not a.node
    if _PHASE_ORDINAL.get(a.phase, 0) != _PHASE_ORDINAL.get(b.phase, 0):
        return _PHASE_ORDINAL.get(a.phase, 0) < _PHASE_ORDINAL.get(b.phase, 0)
    if a.ready != b.ready:
        return not a.ready
    if a.deletion_cost != b.deletion_cost:
        return a.deletion_cost < b.deletion_cost
    if rank_a != rank_b:
        return rank_a > rank_b
    if a.ready and b.ready and a.ready_since_s != b.ready_since_s:
        if now_s is None or a.ready_since_s is None or b.ready_since_s is None:
            return _after_or_none(a.ready_since_s, b.ready_since_s)
        diff = _log2_age(a.ready_since_s, now_s) - _log2_age(b.ready_since_s, now_s)
        return a.uid < b.uid if diff == 0 else diff < 0
    if a.restarts != b.restarts:
        return a.restarts > b.restarts
    if a.created_s != b.created_s:
        if now_s is None or a.created_s is None or b.created_s is None:
            return _after_or_none(a.created_s, b.created_s)
        diff = _log2_age(a.created_s, now_s) - _log2_age(b.created_s, now_s)
        return a.uid < b.uid if diff == 0 else diff < 0
    return False


def _after_or_none(t1: float | None, t2: float | None) -> bool:
    """Kubernetes' afterOrZero: t1 later than t2, a missing time counting as the latest."""
    if t1 is None or t2 is None:
        return t1 is None
    return t1 > t2


def _log2_age(t_s: float, now_s: float) -> int:
    """Kubernetes' logarithmicRankDiff term: floor(log2(age in nanoseconds)), -1 when not positive."""
    age_ns = (now_s - t_s) * 1e9
    return int(math.log2(age_ns)) if age_ns > 0 else -1
