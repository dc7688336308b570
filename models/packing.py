"""From replicas per node group to replicas per node: keep what runs, then first-fit onto the
fewest nodes (consolidation), waking another node of the group only when nothing fits."""

from __future__ import annotations

from wattwise.models.grouping import NodeGroup
from wattwise.models.resources import Resources


def pack_group(group: NodeGroup, wanted: dict[int, int], footprints: dict[int, Resources],
               previous: dict[int, dict[str, int]], active_target: int,
               running: dict[str, int] | None = None) -> tuple[dict[int, dict[str, int]], dict[int, int], list[str]]:
    """Place `wanted[w]` replicas of each workload index w on the group's nodes.

    Nodes are activated in order: those already running these workloads, then those running
    most replicas of any workload (`running`, per node), then powered-on ones, then the roomiest.
    A workload keeps its replicas on the nodes running most of them first, so a scale-down
    removes them from the nodes running fewest. Returns (placed[w][node], unplaced[w], the nodes
    that got replicas).
    """
    running = running or {}
    had = {n.name: 0 for n in group.nodes}
    for w in wanted:
        for node, count in previous.get(w, {}).items():
            if node in had:
                had[node] += count
    free = {n.name: n.free for n in group.nodes}
    order = sorted(group.nodes, key=lambda n: (-had[n.name], -running.get(n.name, 0), not n.powered_on,
                                               -free[n.name].cpu_m, n.name))
    room = {n.name: free[n.name] for n in order}
    active: list[str] = []
    active_set: set[str] = set()
    cursor = 0

    def activate(name: str | None = None) -> str | None:
        nonlocal cursor
        if name is None:
            while cursor < len(order) and order[cursor].name in active_set:
                cursor += 1
            if cursor >= len(order):
                return None
            name = order[cursor].name
            cursor += 1
        active.append(name)
        active_set.add(name)
        return name

    for _ in range(min(active_target, len(order))):
        activate()
    placed: dict[int, dict[str, int]] = {w: {} for w in wanted}
    unplaced: dict[int, int] = {}
    remaining = dict(wanted)
    by_size = sorted(wanted, key=lambda w: -_size(footprints[w]))
    # 1. keep replicas where they already run (no churn), up to what is still wanted
    for w in by_size:
        for node, count in sorted(previous.get(w, {}).items(), key=lambda kv: (-kv[1], kv[0])):
            if node not in room or remaining[w] <= 0:
                continue
            keep = min(count, remaining[w], footprints[w].max_copies_in(room[node]))
            if keep > 0:
                if node not in active_set:
                    activate(node)
                placed[w][node] = placed[w].get(node, 0) + keep
                room[node] = room[node] - footprints[w].scaled(keep)
                remaining[w] -= keep
    # 2. first-fit decreasing onto active nodes, then wake more
    for w in by_size:
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
