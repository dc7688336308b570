"""From replicas per node group to replicas per node: keep what runs, then first-fit onto the
fewest nodes (consolidation), waking another node of the group only when nothing fits."""

from __future__ import annotations

from wattwise.models.grouping import NodeGroup
from wattwise.models.resources import Resources


def pack_group(group: NodeGroup, wanted: dict[int, int], footprints: dict[int, Resources],
               previous: dict[int, dict[str, int]], active_target: int) -> tuple[dict[int, dict[str, int]], dict[int, int], list[str]]:
    """Place `wanted[w]` replicas of each workload index w on the group's nodes.

    Returns (placed[w][node], unplaced[w], active node names in order of activation).
    """
    had = {n.name: sum(previous.get(w, {}).get(n.name, 0) for w in wanted) for n in group.nodes}
    order = sorted(group.nodes, key=lambda n: (-had[n.name], not n.powered_on, -n.free.cpu_m, n.name))
    room = {n.name: n.free for n in order}
    active: list[str] = []
    placed: dict[int, dict[str, int]] = {w: {} for w in wanted}
    unplaced: dict[int, int] = {}

    def activate() -> str | None:
        if len(active) >= len(order):
            return None
        name = order[len(active)].name
        active.append(name)
        return name

    for _ in range(min(active_target, len(order))):
        activate()
    # 1. keep replicas where they already run (no churn), up to what is still wanted
    remaining = dict(wanted)
    for w in sorted(wanted, key=lambda w: -_size(footprints[w])):
        for node, count in sorted(previous.get(w, {}).items()):
            if node not in room or remaining[w] <= 0:
                continue
            keep = min(count, remaining[w], footprints[w].max_copies_in(room[node]))
            if keep > 0:
                placed[w][node] = placed[w].get(node, 0) + keep
                room[node] = room[node] - footprints[w].scaled(keep)
                remaining[w] -= keep
    # nodes that kept replicas are active even when the target was smaller
    for node in [n for w in placed for n in placed[w]]:
        if node not in active:
            active.append(node)
            order.sort(key=lambda n: (n.name not in active, active.index(n.name) if n.name in active else 0))
    # 2. first-fit decreasing onto active nodes, then wake more
    for w in sorted(wanted, key=lambda w: -_size(footprints[w])):
        need = remaining[w]
        while need > 0:
            target = next((n for n in active if footprints[w].fits_in(room[n])), None)
            if target is None:
                target = activate()
                if target is None:
                    unplaced[w] = need
                    break
                if not footprints[w].fits_in(room[target]):
                    continue
            k = min(need, footprints[w].max_copies_in(room[target]))
            placed[w][target] = placed[w].get(target, 0) + k
            room[target] = room[target] - footprints[w].scaled(k)
            need -= k
    used = [n for n in active if any(n in placed[w] for w in placed)]
    return placed, unplaced, used


def _size(r: Resources) -> float:
    return r.cpu_m / 1000 + r.memory_mib / 4096 + r.gpu * 16
