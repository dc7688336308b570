"""Greedy planning: a sound plan in milliseconds, and the MILP's competitor within its budget.

It only uses allowed pairs, respects each group's room, and covers each workload's demand
cheapest-per-frame first (the "cascade": cheapest adequate resource first), adding replicas to a
pair in batches and waking a group's nodes only as its room runs out. A pair's cost per frame
counts the start-up energy of the replicas it would have to start (those beyond what already runs
there), and equal costs go to the pair that runs most of the workload's replicas, then to the group
that runs most replicas of any workload: a count change then adds or removes replicas where they
run instead of moving them to whichever equal node sorts first.
"""

from __future__ import annotations

import math

import numpy as np

from wattwise.models.milp import MilpProblem, MilpSolution, evaluate, running_in_groups


def solve_greedy(p: MilpProblem) -> MilpSolution:
    """The best of a few orders: largest demand first, scarcest options first (confidential
    workloads with few allowed groups claim them before flexible ones), and by options then size."""
    options = np.bincount(p.pair_workload, minlength=len(p.demand))
    orders = [np.argsort(-p.demand, kind="stable"),
              np.lexsort((-p.demand, options)),
              np.lexsort((options, -p.demand * p.cpu_m))]
    pairs_of = _pairs_by_preference(p)
    return min((_greedy(p, order, pairs_of) for order in orders), key=lambda s: s.objective)


def _pairs_by_preference(p: MilpProblem) -> list[list[int]]:
    """Per workload, its pairs in the order the greedy fills them: cheapest per frame (start-up
    counted), then most of its replicas running there, then the busiest group; the same for every
    workload order, so worked out once."""
    per_frame = (p.a_w + p.b_w * p.cap + p.on_w[p.pair_group] / np.maximum(p.copies, 1)) / np.maximum(p.cap, 1e-9)
    startup = _startup_per_frame(p)
    busy = running_in_groups(p)
    out = []
    for w in range(len(p.demand)):
        pairs = np.where(p.pair_workload == w)[0]
        out.append(pairs[np.lexsort((pairs, -busy[p.pair_group[pairs]], -p.prev[pairs],
                                     per_frame[pairs] + startup[pairs]))].tolist())
    return out


def _greedy(p: MilpProblem, order, pairs_of: list[list[int]]) -> MilpSolution:
    """One greedy pass in `order`, on plain Python numbers: a pass makes thousands of tiny steps,
    where numpy's per-element overhead would cost more than the arithmetic (the same IEEE
    operations in the same order, so the same plan)."""
    count = (p.on_count + p.off_count).astype(int).tolist()
    x = [0] * len(p.pair_workload)
    nodes = np.array(p.on_min, dtype=int).tolist()
    used = [[0.0, 0.0, 0.0] for _ in count]
    room = np.stack([p.room_cpu_m, p.room_mem_mib, p.room_gpu], axis=1).tolist()
    need_r = np.stack([p.cpu_m, p.mem_mib, p.gpu], axis=1).tolist()
    cap, copies, group = p.cap.tolist(), p.copies.tolist(), p.pair_group.tolist()
    headroom, demand, floor, max_r = p.headroom.tolist(), p.demand.tolist(), p.floor.tolist(), p.max_r.tolist()
    for w in order.tolist():
        need_fps = (1 + headroom[w]) * demand[w]
        need_n = floor[w]
        budget = int(max_r[w])
        r = need_r[w]
        needs = [k for k in range(3) if r[k] > 0]
        for q in pairs_of[w]:
            g = group[q]
            room_g, used_g = room[g], used[g]
            while (need_fps > 1e-9 or need_n > 0) and budget > 0:
                wanted = max(math.ceil(need_fps / cap[q] - 1e-9), int(need_n), 1)
                # how many fit on the group's nodes now
                fit = int(min([(room_g[k] * nodes[g] - used_g[k]) // r[k] for k in needs])) if needs else wanted
                fit = min(fit, int(copies[q] * nodes[g] - x[q]), wanted, budget)
                if fit <= 0:
                    if nodes[g] >= count[g]:
                        break
                    nodes[g] += 1
                    continue
                x[q] += fit
                for k in range(3):
                    used_g[k] += r[k] * fit
                need_fps -= cap[q] * fit
                need_n -= fit
                budget -= fit
    nodes_a = np.array(nodes, dtype=int)
    v = np.minimum(nodes_a, p.on_count.astype(int))
    return evaluate(p, np.array(x, dtype=int), v, nodes_a - v, status="greedy")


def _startup_per_frame(p: MilpProblem) -> np.ndarray:
    """Per pair: the start-up watts per frame of covering the workload there alone, counting only
    the replicas beyond those already running in the group."""
    need = np.maximum(np.ceil((1 + p.headroom[p.pair_workload]) * p.demand[p.pair_workload] / np.maximum(p.cap, 1e-9)
                              - 1e-9), p.floor[p.pair_workload])
    new = np.maximum(need - p.prev, 0.0)
    return np.where(need > 0, p.e_w * new / np.maximum(need, 1.0), 0.0) / np.maximum(p.cap, 1e-9)
