"""The policy interface and the kube-scheduler / ReplicaSet behaviour every baseline shares."""

from __future__ import annotations

import numpy as np

from wattwise.simulations.context import SimContext


class Policy:
    name = "base"
    direct = False          # True: the policy sets replicas and node power itself (the oracle)

    def __init__(self, scenario, timing):
        self.scenario = scenario
        self.timing = timing

    def start(self, ctx: SimContext) -> None:
        """Before the first step (all nodes start powered on)."""

    def on_tick(self, ctx: SimContext) -> None:
        """Every step, before the HPA."""

    def metric(self, ctx: SimContext):
        """(metric total [W], AverageValue target [W], IsActive [W] or None) for the HPA."""
        raise NotImplementedError

    def replica_bounds(self, ctx: SimContext):
        cm = ctx.cm
        return cm.min_replicas, cm.max_replicas

    def allowed(self, ctx: SimContext, w: int) -> np.ndarray:
        """Nodes the workload may ever run on: kube-scheduler's filters with the extender's TEE filter."""
        return ctx.cm.eligible[w]

    def place(self, ctx: SimContext, w: int, candidates: np.ndarray) -> int:
        return pick_max(ctx, candidates, default_plugin_scores(ctx, w, candidates))

    def victims(self, ctx: SimContext, w: int, k: int) -> list[int]:
        return replicaset_victims(ctx, w, k)

    def manage_nodes(self, ctx: SimContext) -> None:
        """Wake or suspend nodes (the baselines leave every node on)."""


def default_plugin_scores(ctx: SimContext, w: int, candidates: np.ndarray) -> np.ndarray:
    """kube-scheduler's default resource scoring: NodeResourcesFit LeastAllocated plus
    NodeResourcesBalancedAllocation, each 0..100 on CPU and memory requested after placing the pod."""
    cm, st = ctx.cm, ctx.st
    total_c, total_m = cm.total_cpu_m[candidates], cm.total_mem_mib[candidates]
    fc = (total_c - st.free_cpu_m[candidates] + cm.w_cpu_m[w]) / total_c
    fm = (total_m - st.free_mem_mib[candidates] + cm.w_mem_mib[w]) / total_m
    least = np.floor(((1 - fc) + (1 - fm)) / 2 * 100)
    balanced = np.floor((1 - np.abs(fc - fm) / 2) * 100)
    return least + balanced


def pick_max(ctx: SimContext, candidates: np.ndarray, scores: np.ndarray) -> int:
    """The best-scored node; ties broken at random, as kube-scheduler's selectHost does."""
    best = np.flatnonzero(scores >= scores.max() - 1e-9)
    return int(candidates[best[0] if len(best) == 1 else ctx.rng.choice(best)])


def replicaset_victims(ctx: SimContext, w: int, k: int) -> list[int]:
    """Which pods the ReplicaSet controller deletes: not-ready (starting) pods first, then pods on
    nodes running more replicas of the same workload, then the newest (here: last node)."""
    st = ctx.st
    nodes = np.flatnonzero(st.ready[w] + st.booting[w])
    ready = st.ready[w, nodes].astype(np.int64)
    booting = st.booting[w, nodes].astype(np.int64)
    out = []
    for _ in range(k):
        total = ready + booting
        if not total.any():
            break
        pool = booting > 0 if booting.any() else total > 0
        i = int(np.argmax(np.where(pool, total * 1_000_000 + nodes, -1)))
        if booting[i] > 0:
            booting[i] -= 1
        else:
            ready[i] -= 1
        out.append(int(nodes[i]))
    return out
