"""Interchangeable nodes become one group, so the MILP's size depends on the variety of the
cluster, not its size: a group is nodes of one class, zone and set of ready TEEs that admit the
same workloads (`eligibility.placement_reason` for each workload's placement rules: taints, node
selectors, affinity). Its nodes that are powered on come first; waking one of the others costs
more (`on_count` tells them apart).

`pinned` groups hold nodes that already run pods outside WattWise: they stay on whatever we do,
so their idle power is sunk and packing onto them is free of idle cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from wattwise.models.admission import PlacementRules
from wattwise.models.cluster import Node, NodeClass
from wattwise.models.eligibility import placement_reason
from wattwise.models.resources import Resources


@dataclass(frozen=True)
class NodeGroup:
    index: int
    node_class: NodeClass
    zone: str
    tee_ready: frozenset
    pinned: bool
    nodes: tuple[Node, ...]         # powered on first, then most free first
    on_count: int                   # how many of `nodes` are powered on
    free_per_node: Resources        # the smallest free room among the group's nodes

    @property
    def count(self) -> int:
        return len(self.nodes)


def group_nodes(nodes, classes: dict[str, NodeClass], exact_below: int = 48,
                placements: Sequence[PlacementRules] = ()) -> list[NodeGroup]:
    """Group interchangeable nodes. Clusters of fewer than `exact_below` schedulable nodes get one
    group per node: the aggregated packing constraint is then exact, not a relaxation.
    `placements`: the workloads' distinct placement rules; nodes they admit differently never
    share a group (the planner judges a group by its first node)."""
    schedulable = [n for n in nodes if n.schedulable]
    exact = len(schedulable) < exact_below
    buckets: dict[tuple, list[tuple[Node, tuple[int, int, int]]]] = {}
    admitted: dict[tuple, tuple[bool, ...]] = {}
    names = any(r.required_terms is not None for r in placements)
    for n in schedulable:
        pinned = n.reserved.cpu_m > 0 or n.reserved.memory_mib > 0 or n.reserved.gpu > 0
        f = n.free
        room = (f.cpu_m, f.memory_mib, f.gpu)
        # Nodes with much the same room share a group; very different free room splits them. Buckets
        # of 16 cores and 64 GiB: other tenants' pods leave every node a little different room, and
        # 4-core buckets gave 178 groups (17,100 pairs) at 1,000 real nodes, a 1.7 s plan; a group is
        # sized by its tightest node, so coarser buckets may leave some room unused.
        room_bucket = (room[0] // 16000, room[1] // 65536, room[2])
        admits = _admits(placements, n, names, admitted)
        key = (n.node_class, n.zone, n.tee_ready, pinned, room_bucket, admits, n.name if exact else "")
        buckets.setdefault(key, []).append((n, room))
    groups = []
    for i, (key, members) in enumerate(sorted(buckets.items(), key=lambda kv: tuple(map(str, kv[0])))):
        members.sort(key=lambda m: (not m[0].powered_on, -m[1][0], m[0].name))
        free = Resources(*(min(f[k] for _, f in members) for k in range(3)))
        groups.append(NodeGroup(index=i, node_class=classes[key[0]], zone=key[1], tee_ready=key[2], pinned=key[3],
                                nodes=tuple(m for m, _ in members), on_count=sum(1 for m, _ in members if m.powered_on),
                                free_per_node=free))
    return groups


def _admits(placements: Sequence[PlacementRules], node: Node, names: bool,
            seen: dict[tuple, tuple[bool, ...]]) -> tuple[bool, ...]:
    """Which placement rules admit the node. Nodes alike in all the rules read share the verdict:
    labels and taints, and the name too when a rule has node affinity (`names`)."""
    if not placements:
        return ()
    key = (node.name if names else "", node.labels, node.taints)
    verdict = seen.get(key)
    if verdict is None:
        verdict = seen[key] = tuple(placement_reason(rules, node) is None for rules in placements)
    return verdict
