"""Valid inequalities that lift the planning LP's bound towards the integer optimum.

The LP relaxation runs fractions of replicas and fractions of nodes: a GPU workload needing one
replica pays a quarter of a 4-GPU node's idle power, and every group's last node is paid in part.
That left the proven bound 2 to 5% under the integer optimum even where the plan was within
0.5% of it. Three families of cuts, each valid for every integer solution (so the bound stays a
proven lower bound), close most of that:

1. Replicas. From a workload's capacity row, with c its largest per-replica capacity,
   X + (1+h)u/c >= k, where X = sum of its replicas, u its unmet fps and k = (1+h)D/c. X is an
   integer and u >= 0, so mixed-integer rounding gives X + (1+h)u/(c f) >= ceil(k), f = k - floor(k).
2. Somewhere to run. A workload that serves any frame runs a replica, on a node of one of its
   allowed groups: sum over those groups of nodes + u/D >= 1.
3. Nodes. For a set E of groups and the workloads S allowed nowhere else, the packing rows and
   cut 1 give sum_E room_g N_g + sum_S r_w c_w u_w >= sum_S r_w ceil(k_w) =: B per resource
   (c_w the coefficient of u_w in cut 1). Dividing by the largest room in E and rounding the
   node coefficients up to 1 leaves sum_E N_g + s >= B/room with s >= 0 continuous; rounding
   once more: sum_E N_g + s/F >= ceil(B/room), F its fractional part. E ranges over the
   workloads' allowed sets.

A test checks the bound against exhaustive search on random small problems.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from wattwise.models.milp import MilpProblem

TOL = 1e-6


def rounding_cuts(p: MilpProblem, ox: int, ov: int, oz: int, ou: int):
    """The cuts as one block of `>=` rows: (row indices, columns, coefficients, lower bounds)."""
    W, G = len(p.demand), len(p.on_count)
    h = 1 + p.headroom
    largest_cap = np.zeros(W)
    np.maximum.at(largest_cap, p.pair_workload, p.cap)
    served = np.where((p.demand > 0) & (largest_cap > 0))[0]
    k = h[served] * p.demand[served] / largest_cap[served]
    f = k - np.floor(k)
    rounded = f > TOL
    need = np.zeros(W)          # replicas the workload needs at least, when all its demand is met
    per_u = np.zeros(W)         # cut 1's coefficient on u_w
    need[served] = np.where(rounded, np.ceil(k), k)
    per_u[served] = h[served] / (largest_cap[served] * np.where(rounded, f, 1.0))
    block = _Block()
    # 1. replicas: X_w + per_u u_w >= need_w
    row_of = np.full(W, -1)
    row_of[served] = np.arange(len(served))
    sel = row_of[p.pair_workload] >= 0
    block.add(row_of[p.pair_workload[sel]], ox + np.where(sel)[0], 1.0)
    block.add(row_of[served], ou + served, per_u[served])
    block.rows(need[served])
    # 2. somewhere to run: sum of the allowed groups' nodes + u_w / D_w >= 1
    wg = np.unique(p.pair_workload[sel] * G + p.pair_group[sel])
    w_of, g_of = wg // G, wg % G
    block.add(row_of[w_of], ov + g_of, 1.0)
    block.add(row_of[w_of], oz + g_of, 1.0)
    block.add(row_of[served], ou + served, 1.0 / p.demand[served])
    block.rows(np.ones(len(served)))
    # 3. nodes, per allowed set E and resource
    allowed = {int(w): frozenset(g_of[w_of == w].tolist()) for w in served}
    for E in sorted(set(allowed.values()), key=sorted):
        S = np.array([w for w, gs in allowed.items() if gs <= E])
        groups = np.array(sorted(E))
        for r, room in ((p.cpu_m, p.room_cpu_m), (p.mem_mib, p.room_mem_mib), (p.gpu, p.room_gpu)):
            largest = float(room[groups].max())
            B = float(r[S] @ need[S])
            if largest <= 0 or B <= 0:
                continue
            q = B / largest
            F = q - math.floor(q)
            if F < TOL:
                continue
            block.add(0, np.r_[ov + groups, oz + groups], 1.0)
            block.add(0, ou + S, r[S] * per_u[S] / largest / F)
            block.rows(np.array([math.ceil(q)], dtype=float))
    return block.done()


class _Block:
    """Rows added a family at a time; row indices given within the family."""

    def __init__(self):
        self.r, self.c, self.v, self.lb = [], [], [], []
        self._pending: list[tuple] = []
        self.n = 0

    def add(self, rows, cols, vals) -> None:
        cols = np.asarray(cols)
        self._pending.append((np.broadcast_to(rows, cols.shape), cols, np.broadcast_to(np.asarray(vals, dtype=float), cols.shape)))

    def rows(self, lbs: np.ndarray) -> None:
        for r, c, v in self._pending:
            self.r.append(self.n + r)
            self.c.append(c)
            self.v.append(v)
        self._pending = []
        self.lb.append(np.asarray(lbs, dtype=float))
        self.n += len(lbs)

    def done(self):
        if not self.lb:
            return np.zeros(0, int), np.zeros(0, int), np.zeros(0), np.zeros(0)
        return np.concatenate(self.r), np.concatenate(self.c), np.concatenate(self.v), np.concatenate(self.lb)
