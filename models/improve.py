"""Local search on an integer plan: close nodes and re-place workloads while the cost falls.

The greedy and LP rounding decide well which classes serve which workload, but they open nodes
one group at a time and never look back: they leave spare room on nodes that are on anyway (a
GPU node woken for one GPU workload has dozens of idle cores) and partly filled nodes in several
groups. Two moves fix that, each kept only when the MILP's objective falls:

- re-place a workload: take all its replicas out and cover its demand again, cheapest per frame
  on the nodes already counted (no node is woken for it);
- close a node: one node fewer in a group; the replicas that no longer fit move to room left on
  the remaining nodes, anywhere their workload is allowed.

Costs are the MILP's (`milp.evaluate`), computed per workload and per group so a move costs
microseconds, not a full evaluation. Deterministic: fixed orders, a bounded number of passes.
Equal costs never move running replicas: covering prefers the pair that runs most of the
workload's replicas (then the group running most replicas of any workload), and of equally dear
nodes the one running fewest replicas is closed first.
"""

from __future__ import annotations

import math

import numpy as np

from wattwise.models.milp import TIE_W, MilpProblem, MilpSolution, evaluate, kept_running, running_in_groups

class _Search:
    """The plan as plain Python numbers: moves touch a handful of pairs, where numpy's per-call
    overhead would cost more than the arithmetic."""

    def __init__(self, p: MilpProblem, x: np.ndarray, nodes: np.ndarray):
        self.p = p
        W, G = len(p.demand), len(p.on_count)
        self.x = [int(v) for v in x]
        self.nodes = [int(v) for v in nodes]
        self.need = np.stack([p.cpu_m, p.mem_mib, p.gpu], axis=1).tolist()
        self.room = np.stack([p.room_cpu_m, p.room_mem_mib, p.room_gpu], axis=1).tolist()
        self.use = [[0.0, 0.0, 0.0] for _ in range(G)]
        self.w_of, self.g_of = p.pair_workload.tolist(), p.pair_group.tolist()
        self.cap, self.a, self.b, self.e = p.cap.tolist(), p.a_w.tolist(), p.b_w.tolist(), p.e_w.tolist()
        self.prev, self.copies = [int(v) for v in p.prev], p.copies.tolist()
        self.demand, self.headroom = p.demand.tolist(), p.headroom.tolist()
        self.floor, self.max_r = p.floor.tolist(), p.max_r.tolist()
        self.unmet_penalty, self.floor_penalty = float(p.unmet_penalty), p.floor_penalty
        for q, k in enumerate(self.x):
            if k:
                self._add_use(q, k)
        # each workload's pairs, cheapest per served frame first (the order frames are served in)
        self.pairs_of_w = [sorted(np.where(p.pair_workload == w)[0].tolist(), key=lambda q: (self.b[q], q))
                           for w in range(W)]
        self.pairs_of_g = [np.where(p.pair_group == g)[0].tolist() for g in range(G)]
        self.on_count = [int(v) for v in p.on_count]
        self.on_min = [int(v) for v in p.on_min]
        self.on_w, self.wake_w = p.on_w.tolist(), p.wake_w.tolist()
        # replicas the previous plan ran in each group, any workload: ties go to busy groups
        self.busy = running_in_groups(p).tolist()
        # each workload's pairs that ran replicas, most first (`milp.kept_running`'s order)
        self._evict: dict[int, list[int]] = {}   # per group, `_eviction_order`
        self.stay_order = [sorted((q for q in pairs if self.prev[q] > 0), key=lambda q: (-self.prev[q], q))
                           for pairs in self.pairs_of_w]

    def _add_use(self, q: int, k: int) -> None:
        use, need = self.use[self.g_of[q]], self.need[self.w_of[q]]
        for i in range(3):
            use[i] += need[i] * k

    def change(self, q: int, k: int) -> None:
        self.x[q] += k
        self._add_use(q, k)

    # -- costs, as milp.evaluate counts them ------------------------------------------------------
    def node_cost(self, g: int, n: int) -> float:
        v = min(n, self.on_count[g])
        return self.on_w[g] * v + self.wake_w[g] * (n - v)

    def workload_cost(self, w: int, x=None) -> float:
        x = x if x is not None else self.x
        pairs = self.pairs_of_w[w]
        capacity = sum(self.cap[q] * x[q] for q in pairs)
        demand = self.demand[w]
        left = min(demand, capacity / (1 + self.headroom[w]))
        cost = self.unmet_penalty * (demand - left)
        count = 0
        for q in pairs:   # frames go to the cheapest replicas first
            k = x[q]
            if k:
                take = min(left, self.cap[q] * k)
                left -= take
                count += k
                cost += self.a[q] * k + self.e[q] * max(0, k - self.prev[q]) + self.b[q] * take
        return cost + self.floor_penalty * max(0.0, self.floor[w] - count)

    # -- room -------------------------------------------------------------------------------------
    def fits(self, g: int) -> bool:
        n, use, room = self.nodes[g], self.use[g], self.room[g]
        if any(use[i] > room[i] * n + 1e-6 for i in range(3)):
            return False
        return all(self.x[q] <= self.copies[q] * n for q in self.pairs_of_g[g])

    def free_copies(self, q: int) -> int:
        """Replicas of pair q that fit on the group's counted nodes now."""
        g = self.g_of[q]
        n, r, use, room = self.nodes[g], self.need[self.w_of[q]], self.use[g], self.room[g]
        limit = int(self.copies[q] * n - self.x[q])
        for i in range(3):
            if r[i] > 0:
                limit = min(limit, int((room[i] * n - use[i] + 1e-6) // r[i]))
        return max(limit, 0)

    # -- covering a workload on counted nodes -----------------------------------------------------
    def cover(self, w: int) -> bool:
        """Add replicas of w on room already counted until its demand (with headroom) and floor
        are met: each step takes the pair that covers the rest cheapest per frame. False when
        the room runs out first."""
        pairs = self.pairs_of_w[w]
        need_fps, h = (1 + self.headroom[w]) * self.demand[w], 1 + self.headroom[w]
        while True:
            deficit = need_fps - sum(self.cap[q] * self.x[q] for q in pairs)
            count = sum(self.x[q] for q in pairs)
            if deficit <= 1e-6 and count >= self.floor[w]:
                return True
            budget = int(self.max_r[w]) - count
            best, best_k, best_cost = -1, 0, math.inf
            for q in pairs if budget > 0 else ():
                fit = min(self.free_copies(q), budget)
                if fit <= 0:
                    continue
                k = min(fit, max(1, math.ceil(deficit / self.cap[q] - 1e-9)) if deficit > 1e-6 else 1)
                running = max(0, min(k, self.prev[q] - self.x[q]))   # replicas that already run
                served = min(max(deficit, 0.0), k * self.cap[q]) / h
                cost = k * self.a[q] + (k - running) * self.e[q] + self.b[q] * served
                per = cost / served if served > 0 else cost * 1e6
                if per < best_cost or (per == best_cost and self._runs_more(q, best)):
                    best, best_k, best_cost = q, k, per
            if best < 0:
                return False
            self.change(best, best_k)

    def kept(self, w: int, x) -> tuple[int, tuple[int, ...], int]:
        """`milp.kept_running` for workload w's pairs (`x` indexed by pair)."""
        kept = tuple(min(x[q], self.prev[q]) for q in self.stay_order[w])
        return sum(kept), kept, sum(x[q] for q in self.pairs_of_w[w] if self.busy[self.g_of[q]] > 0)

    def _runs_more(self, q: int, than: int) -> bool:
        """Of two equally cheap pairs, q is where more already runs: more of the workload's
        replicas, then more replicas of any workload in the group."""
        return (self.prev[q], self.busy[self.g_of[q]]) > (self.prev[than], self.busy[self.g_of[than]])

    # -- moves ------------------------------------------------------------------------------------
    def replace_workload(self, w: int, settle: bool = False) -> bool:
        """Cover w again from scratch; kept when cheaper, or with `settle` when as cheap and more
        of its replicas stay where they ran (`cover` prefers those)."""
        pairs = self.pairs_of_w[w]
        before_x = [self.x[q] for q in pairs]
        if not any(before_x):
            return False
        before = self.workload_cost(w)
        for q, k in zip(pairs, before_x):
            if k:
                self.change(q, -k)
        if self.cover(w):
            after = self.workload_cost(w)
            if after < before - 1e-6:
                return True
            if settle and after <= before + TIE_W and self.kept(w, self.x) > self.kept(w, dict(zip(pairs, before_x))):
                return True
        for q, k in zip(pairs, before_x):
            if self.x[q] != k:
                self.change(q, k - self.x[q])
        return False

    def _eviction_order(self, g: int) -> list[int]:
        """The group's pairs, biggest replicas first (fewest moves to free a node's worth of
        room): fixed for the search, so sorted once per group."""
        order = self._evict.get(g)
        if order is None:
            room = self.room[g]
            size = {q: sum(self.need[self.w_of[q]][i] / max(room[i], 1.0) for i in range(3)) for q in self.pairs_of_g[g]}
            order = self._evict[g] = sorted(self.pairs_of_g[g], key=lambda q: (-size[q], q))
        return order

    def close_node(self, g: int) -> bool:
        if self.nodes[g] <= self.on_min[g]:
            return False
        saving = self.node_cost(g, self.nodes[g]) - self.node_cost(g, self.nodes[g] - 1)
        if saving <= 1e-9:
            return False
        saved_x, saved_use = list(self.x), [list(u) for u in self.use]
        touched = set()
        self.nodes[g] -= 1
        for q in self._eviction_order(g):
            while self.x[q] > 0 and not self.fits(g):
                self.change(q, -1)
                touched.add(self.w_of[q])
        before = {w: self.workload_cost(w, saved_x) for w in touched}
        if all(self.cover(w) for w in sorted(touched)) and \
                sum(self.workload_cost(w) - before[w] for w in touched) < saving - 1e-6:
            return True
        self.nodes[g] += 1
        self.x, self.use = saved_x, saved_use
        return False


def improve(p: MilpProblem, sol: MilpSolution, max_passes: int = 8) -> MilpSolution:
    """`sol` made cheaper by local search (or `sol` itself when no move helps)."""
    if not len(p.pair_workload):
        return sol
    s = _Search(p, sol.x, sol.v + sol.z)
    per_node = np.maximum(p.on_w, p.wake_w)
    # dearest nodes first; of equally dear ones, those running fewest replicas (fewest to move)
    group_order = sorted(range(len(p.on_count)), key=lambda g: (-per_node[g], s.busy[g], g))
    for _ in range(max_passes):
        moved = False
        for w in range(len(p.demand)):
            moved |= s.replace_workload(w)
        for g in group_order:
            while s.close_node(g):
                moved = True
        if not moved:
            break
    # settle ties the search left (the relaxation's, e.g. a scale-down taken off the node running
    # most): as cheap, and more replicas where they ran. Only after the search, which is then
    # the same as without it, so no tie move steers it to another local optimum
    for w in range(len(p.demand)):
        s.replace_workload(w, settle=True)
    nodes = np.array(s.nodes, dtype=int)
    v = np.maximum(np.minimum(nodes, p.on_count.astype(int)), p.on_min.astype(int))
    better = evaluate(p, np.array(s.x, dtype=int), v, nodes - v, sol.bound, sol.status + "+local")
    if better.objective < sol.objective - 1e-9:
        return better
    as_cheap = better.objective <= sol.objective + TIE_W
    return better if as_cheap and kept_running(p, better.x) > kept_running(p, sol.x) else sol
