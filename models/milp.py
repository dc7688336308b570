"""The planning mixed-integer program, solved by HiGHS through `scipy.optimize.milp`.

Per allowed (workload w, node group g) pair p: x_p replicas, f_p frames/s served, n_p new
replicas. Per group: v_g awake nodes kept on and z_g sleeping nodes woken (integers). Per
workload: u_w unmet frames/s and s_w replicas missing from its floor (slack, heavily penalised,
so the program is always feasible and says how much it cannot meet instead of failing).

  min  sum_p k_g (a_p x_p + b_p f_p + e_p n_p) + sum_g (i_g v_g + j_g z_g) + M sum_w u_w + M' sum_w s_w
  s.t. sum_p cap_p x_p + (1+h_w) u_w >= (1+h_w) D_w    capacity with headroom
       sum_p f_p + u_w >= D_w                            every frame served or counted unmet
       f_p <= cap_p x_p                                  a replica serves at most its capacity
       sum_{p in g} r_w x_p <= room_g (v_g + z_g)        packing per resource (cpu, mem, gpu)
       x_p <= copies_p (v_g + z_g)                       at most what fits per node
       floor_w <= sum_p x_p + s_w,  sum_p x_p <= max_w
       sum_p x_p + u_w / D_w >= 1   (D_w > 0)             serving any frame takes a replica
       x_p - n_p <= prev_p                               new replicas pay their start-up

plus the rounding cuts of `milp_cuts.py`, valid for every integer solution.

k_g is the zone's cost weight (energy or carbon), a_p and b_p the replica's standing watts and
joules per frame, e_p its start-up energy amortised; i_g the watts of keeping an awake node on,
j_g that plus its wake energy amortised.

Exact mode (small problems): x integer. Scaled mode: only v, z integer; x is then rounded up
with repair (`round_replicas`). Replica counts are large there, so rounding costs little, while
the node counts, where the integrality gap lives, stay exact. Both modes' dual bounds are valid
lower bounds for the integer problem, so the reported gap is honest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix

from wattwise.models.milp_cuts import rounding_cuts


@dataclass
class MilpProblem:
    # per pair
    pair_workload: np.ndarray  # index of the pair's workload
    pair_group: np.ndarray     # index of the pair's node group
    cap: np.ndarray           # fps per replica
    a_w: np.ndarray           # standing watts per replica (cost-weighted)
    b_w: np.ndarray           # watts per fps (cost-weighted)
    e_w: np.ndarray           # amortised start-up watts per new replica (cost-weighted)
    prev: np.ndarray          # replicas last plan had in this group
    copies: np.ndarray        # replicas that fit on one node of the group
    # per workload
    demand: np.ndarray
    floor: np.ndarray
    max_r: np.ndarray
    cpu_m: np.ndarray
    mem_mib: np.ndarray
    gpu: np.ndarray
    # per group
    on_w: np.ndarray          # cost-weighted watts per awake node kept on
    wake_w: np.ndarray        # cost-weighted watts per sleeping node woken
    on_count: np.ndarray
    off_count: np.ndarray
    on_min: np.ndarray        # awake nodes that stay on whatever we do (pinned)
    room_cpu_m: np.ndarray
    room_mem_mib: np.ndarray
    room_gpu: np.ndarray
    headroom: np.ndarray      # per workload, a fraction (0.1 = 10% above demand)
    unmet_penalty: float

    @property
    def floor_penalty(self) -> float:
        return self.unmet_penalty * (float(self.cap.max()) if len(self.cap) else 1.0)


@dataclass
class MilpSolution:
    x: np.ndarray             # replicas per pair (integers)
    f: np.ndarray
    v: np.ndarray             # awake nodes kept on, per group
    z: np.ndarray             # nodes woken, per group
    unmet: np.ndarray
    objective: float
    bound: float
    gap: float
    status: str

    @property
    def nodes(self) -> np.ndarray:
        return self.v + self.z


TIE_W = 1e-6   # plans whose costs differ by less than this many (weighted) watts cost the same


def running_in_groups(p: MilpProblem) -> np.ndarray:
    """Per group: replicas of any workload the previous plan ran there. Where costs tie, replicas
    go to the pair that already runs the workload, then to the busiest group, never to whichever
    group happens to sort first (each such flip deletes pods on one node and starts them on another)."""
    return np.bincount(p.pair_group, weights=p.prev, minlength=len(p.on_count))


def kept_running(p: MilpProblem, x) -> tuple[int, tuple[int, ...], int]:
    """How well replicas `x` stay where the previous plan ran replicas: (replicas kept in place;
    those kept per pair, the pairs that ran most first; replicas in groups that ran any). Of
    equally cheap plans the one with the larger key wins: it moves nothing it need not move, a
    scale-down empties the node running fewest, and new replicas join nodes already busy."""
    x = np.asarray(x)
    ran = np.where(p.prev > 0)[0]
    ran = ran[np.lexsort((ran, -p.prev[ran]))]
    kept = np.minimum(x[ran], p.prev[ran]).astype(int)
    busy = running_in_groups(p)[p.pair_group] > 0
    return int(kept.sum()), tuple(kept.tolist()), int(x[busy].sum())


def _constraints(p: MilpProblem, cuts: bool = True):
    P, G, W = len(p.pair_workload), len(p.on_count), len(p.demand)
    ox, of, on, ov, oz, ou, os_ = 0, P, 2 * P, 3 * P, 3 * P + G, 3 * P + 2 * G, 3 * P + 2 * G + W
    nv = 3 * P + 2 * G + 2 * W
    h = p.headroom
    rows, cols, vals, lbs, ubs = [], [], [], [], []
    row = 0
    pi, wi, gi = np.arange(P), np.arange(W), np.arange(G)

    def add(r, c, v) -> None:
        """Coefficients v in columns c of rows r, counted from the first row of the open block."""
        r = np.asarray(r)
        rows.append(row + r)
        cols.append(np.asarray(c))
        vals.append(np.broadcast_to(np.asarray(v, dtype=float), r.shape))

    def close(lb, ub) -> None:
        """Close the block: lb <= each of its rows <= ub (either may be one number for all)."""
        nonlocal row
        lb, ub = np.broadcast_arrays(np.asarray(lb, dtype=float), np.asarray(ub, dtype=float))
        lbs.append(lb)
        ubs.append(ub)
        row += len(lb)

    # capacity with headroom: sum_p cap_p x_p + (1+h_w) u_w >= (1+h_w) D_w
    add(p.pair_workload, ox + pi, p.cap)
    add(wi, ou + wi, 1 + h)
    close((1 + h) * p.demand, np.inf)
    # every frame served or counted unmet: sum_p f_p + u_w >= D_w
    add(p.pair_workload, of + pi, 1.0)
    add(wi, ou + wi, 1.0)
    close(p.demand, np.inf)
    # a replica serves at most its capacity: f_p - cap_p x_p <= 0
    add(pi, of + pi, 1.0)
    add(pi, ox + pi, -p.cap)
    close(-np.inf, np.zeros(P))
    # packing per resource: sum_{p in g} r_w x_p - room_g (v_g + z_g) <= 0
    for need, room in ((p.cpu_m, p.room_cpu_m), (p.mem_mib, p.room_mem_mib), (p.gpu, p.room_gpu)):
        per_pair = need[p.pair_workload]
        used = per_pair > 0
        if not used.any():
            continue
        add(p.pair_group[used], ox + pi[used], per_pair[used])
        add(gi, ov + gi, -room)
        add(gi, oz + gi, -room)
        close(-np.inf, np.zeros(G))
    # a workload that serves any frame runs at least one replica: sum x + u / D >= 1 (valid for
    # integer x, and it lifts the LP bound where demand needs only a fraction of a replica)
    served = np.where(p.demand > 0)[0]
    if len(served):
        sel = np.isin(p.pair_workload, served)
        pos = {w: i for i, w in enumerate(served)}
        add(np.array([pos[w] for w in p.pair_workload[sel]], dtype=int), ox + pi[sel], 1.0)
        add(np.arange(len(served)), ou + served, 1.0 / p.demand[served])
        close(np.ones(len(served)), np.inf)
    if cuts:
        r, c, v, lb = rounding_cuts(p, ox, ov, oz, ou)
        add(r, c, v)
        close(lb, np.inf)
    # at most what fits per node: x_p - copies_p (v_g + z_g) <= 0
    add(pi, ox + pi, 1.0)
    add(pi, ov + p.pair_group, -p.copies)
    add(pi, oz + p.pair_group, -p.copies)
    close(-np.inf, np.zeros(P))
    # floor_w <= sum_p x_p + s_w
    add(p.pair_workload, ox + pi, 1.0)
    add(wi, os_ + wi, 1.0)
    close(p.floor, np.inf)
    # sum_p x_p <= max_w
    add(p.pair_workload, ox + pi, 1.0)
    close(-np.inf, p.max_r)
    # new replicas pay their start-up: x_p - n_p <= prev_p
    add(pi, ox + pi, 1.0)
    add(pi, on + pi, -1.0)
    close(-np.inf, p.prev)
    A = coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(row, nv)).tocsr()
    return A, np.concatenate(lbs), np.concatenate(ubs), (ox, of, on, ov, oz, ou, os_, nv)


def _run(p: MilpProblem, time_limit_s: float, rel_gap: float, integrality_of: str, node_limit: int | None = None,
         cuts: bool = True):
    """Solve with x integer ("all"), only node counts integer ("nodes") or nothing ("none")."""
    P, G, W = len(p.pair_workload), len(p.on_count), len(p.demand)
    A, lb_rows, ub_rows, (ox, of, on, ov, oz, ou, os_, nv) = _constraints(p, cuts)
    c = np.concatenate([p.a_w, p.b_w, p.e_w, p.on_w, p.wake_w, np.full(W, p.unmet_penalty), np.full(W, p.floor_penalty)])
    x_ub = np.minimum(p.max_r[p.pair_workload], p.copies * (p.on_count + p.off_count)[p.pair_group]).astype(float)
    lb = np.concatenate([np.zeros(3 * P), p.on_min, np.zeros(G), np.zeros(2 * W)])
    ub = np.concatenate([x_ub, p.cap * x_ub, x_ub, p.on_count, p.off_count, p.demand, p.floor])
    x_int = 1 if integrality_of == "all" else 0
    y_int = 0 if integrality_of == "none" else 1
    integrality = np.concatenate([np.full(P, x_int), np.zeros(2 * P), np.full(2 * G, y_int), np.zeros(2 * W)])
    res = milp(c, constraints=LinearConstraint(A, lb_rows, ub_rows), integrality=integrality,
               bounds=Bounds(lb, ub.astype(float)),
               options={"time_limit": max(time_limit_s, 0.01), "mip_rel_gap": rel_gap, "disp": False,
                        **({"node_limit": int(node_limit)} if node_limit else {})})
    bound = getattr(res, "mip_dual_bound", None)
    if bound is None or not math.isfinite(bound):
        bound = float(res.fun) if res.x is not None and res.status == 0 else -math.inf
    if res.status == 0:
        status = "optimal"
    elif res.status == 1:  # iteration or time limit: tell which, only the time limit is nondeterministic
        status = "node-limit" if "time" not in str(res.message).lower() else "time-limit"
    else:
        status = f"status-{res.status}"
    if res.x is None:
        return None, float(bound), status
    sol = res.x
    parts = (sol[ox:ox + P], sol[ov:ov + G], sol[oz:oz + G], sol[ou:ou + W])
    return parts, float(bound), status


def solve(p: MilpProblem, time_limit_s: float, rel_gap: float, integer_replicas: bool = True,
          node_limit: int | None = None) -> tuple[MilpSolution | None, float]:
    """The MILP within a work limit (nodes) and a time cap: (best solution or None, proven lower bound)."""
    parts, bound, status = _run(p, time_limit_s, rel_gap, "all" if integer_replicas else "nodes", node_limit)
    if parts is None:
        return None, bound
    x, v, z, unmet = parts
    v, z = np.rint(v).astype(int), np.rint(z).astype(int)
    if integer_replicas:
        x = np.rint(x).astype(int)
    else:
        x, v, z = round_replicas(p, x, unmet, v, z)
    return evaluate(p, x, v, z, bound, status), bound


def solve_lp_rounding(p: MilpProblem) -> MilpSolution | None:
    """The LP relaxation (fast, and a valid lower bound), rounded to integers with repair."""
    parts, bound, status = _run(p, 5.0, 1e-9, "none")
    if parts is None:
        return None
    x, v, z, unmet = parts
    v = np.ceil(v - 1e-6).astype(int)
    z = np.ceil(z - 1e-6).astype(int)
    x, v, z = round_replicas(p, x, unmet, v, z)
    return evaluate(p, x, v, z, bound, "lp-rounding")


def _use(p: MilpProblem, x: np.ndarray):
    G = len(p.on_count)
    return [np.bincount(p.pair_group, weights=need[p.pair_workload] * x, minlength=G)
            for need in (p.cpu_m, p.mem_mib, p.gpu)]


class _GroupRoom:
    """Resources used per group, and one more replica of a pair: placed if the group's active
    nodes have room, after waking one more of its nodes (awake ones first) if that is needed."""

    def __init__(self, p: MilpProblem, x: np.ndarray, v: np.ndarray, z: np.ndarray):
        self.p, self.x, self.v, self.z = p, x, v, z
        self.use = np.stack(_use(p, x), axis=1)
        self.need = np.stack([p.cpu_m, p.mem_mib, p.gpu], axis=1)
        self.room = np.stack([p.room_cpu_m, p.room_mem_mib, p.room_gpu], axis=1)

    def add_one(self, q: int) -> bool:
        p = self.p
        w, g = p.pair_workload[q], p.pair_group[q]
        while True:
            nodes = self.v[g] + self.z[g]
            if self._fits(q, nodes):
                self.x[q] += 1
                self.use[g] += self.need[w]
                return True
            if self.v[g] < p.on_count[g]:
                self.v[g] += 1
            elif self.z[g] < p.off_count[g]:
                self.z[g] += 1
            else:
                return False

    def _fits(self, q: int, nodes: int) -> bool:
        p = self.p
        w, g = p.pair_workload[q], p.pair_group[q]
        return bool((self.use[g] + self.need[w] <= self.room[g] * nodes + 1e-6).all() and self.x[q] + 1 <= p.copies[q] * nodes)

    def node_w(self, q: int) -> float:
        """What one more replica of pair q costs in nodes: nothing when it fits on the group's
        counted nodes, else the next node's watts (an awake one first), inf when none is left."""
        p, g = self.p, self.p.pair_group[q]
        if self._fits(q, self.v[g] + self.z[g]):
            return 0.0
        if self.v[g] < p.on_count[g]:
            return float(p.on_w[g])
        return float(p.wake_w[g]) if self.z[g] < p.off_count[g] else math.inf


def cover_unmet(p: MilpProblem, x: np.ndarray, v: np.ndarray, z: np.ndarray):
    """Repair: where capacity (without headroom) falls short of demand and an allowed group still
    has room or a node to wake, add replicas there one at a time, each where it covers the rest
    cheapest per frame counting the node it needs (an awake node before a woken one, room on
    counted nodes before either). The penalty on unmet frames makes this rare; this pass makes
    "the SLA is met whenever room exists" hold even for residues too small for the penalty to
    notice, and a residue of a few frames then costs a node kept on, not one woken."""
    room = _GroupRoom(p, x.copy(), v.copy(), z.copy())
    busy = running_in_groups(p)
    for w in range(len(p.demand)):
        pairs = np.where(p.pair_workload == w)[0]
        while True:
            deficit = float(p.demand[w] - p.cap[pairs] @ room.x[pairs])
            if deficit <= 1e-9 or room.x[pairs].sum() >= p.max_r[w]:
                break
            best = None
            for q in pairs:
                node_w = room.node_w(q)
                if node_w == math.inf or p.cap[q] <= 0:
                    continue
                k = max(1, min(math.ceil(deficit / p.cap[q] - 1e-9), int(p.copies[q])))   # replicas one node serves
                served = min(deficit, k * p.cap[q])
                start = p.e_w[q] * max(0, min(k, room.x[q] + k - p.prev[q]))
                per_frame = (node_w + k * p.a_w[q] + start + p.b_w[q] * served) / served
                key = (per_frame, -p.prev[q], -busy[p.pair_group[q]], q)
                if best is None or key < best:
                    best = key
            if best is None or not room.add_one(best[3]):
                break
    return room.x, room.v, room.z


def _short(p: MilpProblem, x: np.ndarray, w: int, pairs: np.ndarray, need_fps: float) -> bool:
    """Workload w's replicas (x on its pairs) fall short of need_fps or of its floor, and it may have more."""
    replicas = x[pairs].sum()
    return bool((p.cap[pairs] @ x[pairs] < need_fps or replicas < p.floor[w]) and replicas < p.max_r[w])


def round_replicas(p: MilpProblem, x_cont: np.ndarray, unmet: np.ndarray, v: np.ndarray, z: np.ndarray):
    """Integer replicas from continuous ones: floor, then add replicas (largest remainder first,
    then cheapest per frame, then where they already run) until each workload's capacity and floor
    are met as the relaxation met them; wake a node of the group only when its room is exhausted."""
    room = _GroupRoom(p, np.floor(x_cont + 1e-6).astype(int), v.copy(), z.copy())
    x = room.x
    per_frame = (p.a_w + p.b_w * p.cap) / np.maximum(p.cap, 1e-9)
    busy = running_in_groups(p)
    for w in range(len(p.demand)):
        pairs = np.where(p.pair_workload == w)[0]
        need_fps = (1 + p.headroom[w]) * max(0.0, p.demand[w] - unmet[w]) - 1e-6
        for q in sorted(pairs, key=lambda q: (-(x_cont[q] - x[q]), per_frame[q], -p.prev[q], -busy[p.pair_group[q]], q)):
            while _short(p, x, w, pairs, need_fps) and room.add_one(q):
                pass
    v, z = room.v, room.z
    # drop nodes the rounded replicas do not need
    use_cpu, use_mem, use_gpu = _use(p, x)
    for g in range(len(v)):
        needed = 0
        for use, cap in ((use_cpu, p.room_cpu_m), (use_mem, p.room_mem_mib), (use_gpu, p.room_gpu)):
            if use[g] > 0:
                needed = max(needed, math.ceil(use[g] / cap[g] - 1e-9))
        pairs = np.where(p.pair_group == g)[0]
        if len(pairs):
            needed = max([needed] + [math.ceil(x[q] / p.copies[q] - 1e-9) for q in pairs if x[q] > 0])
        needed = max(needed, int(p.on_min[g]))
        while v[g] + z[g] > needed and z[g] > 0:
            z[g] -= 1
        while v[g] + z[g] > needed and v[g] > p.on_min[g]:
            v[g] -= 1
    return x, v, z


def evaluate(p: MilpProblem, x, v, z, bound: float = -math.inf, status: str = "evaluated") -> MilpSolution:
    """The objective of integer replicas and node counts, serving frames cheapest first."""
    W = len(p.demand)
    f = np.zeros(len(x))
    unmet = np.zeros(W)
    floor_short = np.zeros(W)
    order = np.lexsort((p.b_w, p.pair_workload))
    cap_by_w = np.bincount(p.pair_workload, weights=p.cap * x, minlength=W)
    left = np.minimum(p.demand, cap_by_w / (1 + p.headroom))
    unmet = p.demand - left
    for q in order:
        w = p.pair_workload[q]
        take = min(left[w], p.cap[q] * x[q])
        f[q] = take
        left[w] -= take
    reps = np.bincount(p.pair_workload, weights=x, minlength=W)
    floor_short = np.maximum(0.0, p.floor - reps)
    new = np.maximum(0, x - p.prev)
    obj = float(p.a_w @ x + p.b_w @ f + p.e_w @ new + p.on_w @ v + p.wake_w @ z +
                p.unmet_penalty * unmet.sum() + p.floor_penalty * floor_short.sum())
    gap = (obj - bound) / abs(obj) if math.isfinite(bound) and obj != 0 else (0.0 if obj == bound else math.inf)
    return MilpSolution(x=np.asarray(x, dtype=int), f=f, v=np.asarray(v, dtype=int), z=np.asarray(z, dtype=int),
                        unmet=unmet, objective=obj, bound=bound, gap=max(0.0, gap), status=status)
