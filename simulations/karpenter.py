"""Karpenter (v1), one NodePool over the scenario's node types and zones, its inventory the
scenario's nodes (a node it launches is one that was powered down; one it deletes is powered down
and draws its sleep power).

- Provisioning: pending pods that kube-scheduler could not bind and the nodes already starting
  will not take are packed, largest first, onto new NodeClaims: a pod joins the first claim whose
  remaining instance types (node groups) all admit it and can hold it, else opens one; each claim
  is launched as the cheapest type left that has a node to add (ties at random). The node is
  schedulable after its class's node start time (`wake_s`).
- Disruption, `consolidationPolicy: WhenEmptyOrUnderutilized`: a node is a candidate once no pod
  has been bound to or removed from it for `consolidateAfter` (here 1 minute; the clock starts
  when a launched node is up). One method per pass, within the NodePool's disruption budget
  (default `nodes: 10%` of its launched nodes, rounded up, less those being disrupted):
  emptiness (delete empty candidates), then multi-node consolidation (a binary search over the
  candidates, fewest pods first, for the most that can go at once), then single-node
  consolidation (the first candidate that can go). A set of candidates can go when their pods,
  after the pending pods, fit on the other nodes that are up (delete; Karpenter does not
  consolidate onto a node still starting), or on those plus one new node cheaper than the
  candidates together (replace: the replacement is launched first, the candidates are tainted
  `karpenter.sh/disrupted:NoSchedule` and drained once it is up). Drained pods' replacements start
  on the nodes kube-scheduler picks; a drained node is powered down once its last evicted pod has
  gone (each serves until a replacement can be ready, `ClusterState.drain`). As Karpenter does, a
  pass that found nothing is not repeated until the cluster changes (or 5 minutes pass). The 15 s
  re-validation before a command runs is not modelled.
- Price: Karpenter chooses by price, which the scenario does not give. On-demand prices are close
  to linear in vCPUs and memory within a family; fitted to AWS us-east-1 m6i.xlarge ($0.192/h,
  4 vCPU, 16 GiB) and c6i.xlarge ($0.17/h, 4 vCPU, 8 GiB): $0.037 per vCPU-hour (a scenario core
  is one schedulable CPU) and $0.00275 per GiB-hour, plus $6 per GPU-hour, the order of an H100's
  on-demand price (only GPU nodes hold GPU pods, so it only has to make them dear).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from wattwise.simulations.autoscaler_fit import (Room, eviction_grace_s, largest_first, node_groups, node_pods,
                                                 pack_new_nodes, pending_pods, place_first_fit, uncovered_pending)
from wattwise.simulations.cluster_model import ON, SLEEPING, WAKING, ClusterModel
from wattwise.simulations.context import SimContext

VCPU_PER_H = 0.037
GIB_PER_H = 0.00275
GPU_PER_H = 6.0
CONSOLIDATED_TTL_S = 300.0


def node_prices(cm: ClusterModel) -> np.ndarray:
    """$ per hour per node, from its class's cores, memory and GPUs."""
    classes = cm.snapshot.node_classes
    per_class = np.array([classes[c].cores * VCPU_PER_H + classes[c].memory_gib * GIB_PER_H
                          + classes[c].gpu_count * GPU_PER_H for c in cm.class_names])
    return per_class[cm.class_idx]


@dataclass(frozen=True)
class KarpenterSettings:
    consolidate_after_s: float = 60.0
    budget_nodes_share: float = 0.10
    multi_node_max_candidates: int = 100


@dataclass(frozen=True)
class Command:
    candidates: tuple[int, ...]
    replacement: int | None = None     # None: delete


class Karpenter:
    def __init__(self, ctx: SimContext, settings: KarpenterSettings = KarpenterSettings()):
        self.settings = settings
        self.groups = node_groups(ctx.cm)
        self.price = node_prices(ctx.cm)
        self.grace_s = eviction_grace_s(ctx.cm)
        self.replacing: list[Command] = []
        self._settled: tuple = (None, -np.inf)   # (state key, time) of the last pass that found nothing
        self.launches = 0
        self.deletions = 0
        self.replacements = 0

    def step(self, ctx: SimContext) -> None:
        ctx.st.power_down_drained(ctx.now_s, ctx.timing.sleep_s)
        self.provision(ctx)
        self.finish_replacements(ctx)
        self.disrupt(ctx)

    # --- provisioning -------------------------------------------------------------------------
    def provision(self, ctx: SimContext) -> None:
        cm, st = ctx.cm, ctx.st
        pods = uncovered_pending(cm, st)
        if not pods:
            return
        avail = {i: list(g.available(st)) for i, g in enumerate(self.groups)}
        caps = {i: np.array([cm.alloc_cpu_m[g.members[0]], cm.alloc_mem_mib[g.members[0]], cm.alloc_gpu[g.members[0]]])
                for i, g in enumerate(self.groups)}
        claims: list[tuple[list[int], np.ndarray]] = []
        for w in largest_first(cm, pods):
            need = np.array([cm.w_cpu_m[w], cm.w_mem_mib[w], cm.w_gpu[w]])
            for k, (opts, used) in enumerate(claims):
                left = [i for i in opts if cm.eligible[w, self.groups[i].members[0]] and np.all(used + need <= caps[i])]
                if left:
                    claims[k] = (left, used + need)
                    break
            else:
                opts = [i for i in avail if avail[i] and cm.eligible[w, self.groups[i].members[0]] and np.all(need <= caps[i])]
                if opts:
                    claims.append((opts, need))
        for opts, _ in claims:
            g = self._cheapest(ctx, [i for i in opts if avail[i]])
            if g is not None:
                st.wake(int(avail[g].pop(0)), ctx.now_s)
                self.launches += 1

    def _cheapest(self, ctx: SimContext, groups: list[int]) -> int | None:
        if not groups:
            return None
        prices = np.array([round(self.price[self.groups[i].members[0]], 9) for i in groups])
        best = np.flatnonzero(prices == prices.min())
        return groups[int(best[0] if len(best) == 1 else ctx.rng.choice(best))]

    # --- disruption ---------------------------------------------------------------------------
    def finish_replacements(self, ctx: SimContext) -> None:
        st = ctx.st
        for cmd in list(self.replacing):
            if st.node_state[cmd.replacement] == ON:
                self._remove(ctx, cmd.candidates)
                self.replacing.remove(cmd)
            elif st.node_state[cmd.replacement] != WAKING:   # the replacement never came: un-taint
                st.cordoned[list(cmd.candidates)] = False
                self.replacing.remove(cmd)

    def budget(self, ctx: SimContext) -> int:
        cm, st = ctx.cm, ctx.st
        managed = ~cm.pinned
        launched = managed & ((st.node_state == ON) | (st.node_state == WAKING))
        disrupting = sum(len(c.candidates) for c in self.replacing) + int(
            (managed & ((st.node_state == SLEEPING) | (st.retiring & (st.node_state == ON)))).sum())
        return math.ceil(self.settings.budget_nodes_share * launched.sum() - 1e-9) - disrupting

    def disrupt(self, ctx: SimContext) -> None:
        cm, st = ctx.cm, ctx.st
        budget = self.budget(ctx)
        if budget <= 0:
            return
        quiet = ctx.now_s - st.pods_changed_s >= self.settings.consolidate_after_s - 1e-9
        candidates = ~cm.pinned & st.schedulable & quiet
        pods = st.pods_on()
        empty = np.flatnonzero(candidates & (pods == 0))[:budget]
        if len(empty):
            self._remove(ctx, tuple(int(n) for n in empty))
            return
        busy = np.flatnonzero(candidates & (pods > 0))
        if not len(busy):
            return
        # like Karpenter, no new attempt while nothing changed since one found nothing (at most 5 minutes)
        key = (st.version, candidates.tobytes(), budget)
        if key == self._settled[0] and ctx.now_s - self._settled[1] < CONSOLIDATED_TTL_S:
            return
        busy = busy[np.lexsort((busy, pods[busy]))]        # fewest pods first (the disruption cost)
        up = st.schedulable
        room = Room.of(st)   # pending pods keep their places, on nodes up or starting
        place_first_fit(cm, room, pending_pods(st), up | ((st.node_state == WAKING) & ~st.cordoned))
        cmd = self._multi_node(ctx, [int(n) for n in busy[:min(budget, self.settings.multi_node_max_candidates)]],
                               room, up)
        if cmd is None:
            cmd = next((c for c in (self._option(ctx, (int(n),), room, up) for n in busy) if c is not None), None)
        if cmd is None:
            self._settled = (key, ctx.now_s)
            return
        if cmd.replacement is None:
            self._remove(ctx, cmd.candidates)
        else:
            st.wake(cmd.replacement, ctx.now_s)
            st.cordoned[list(cmd.candidates)] = True
            self.replacing.append(cmd)
            self.launches += 1
            self.replacements += 1

    def _multi_node(self, ctx: SimContext, order: list[int], room: Room, up: np.ndarray) -> Command | None:
        lo, hi, found = 2, len(order), None
        while lo <= hi:
            mid = (lo + hi) // 2
            cmd = self._option(ctx, tuple(order[:mid]), room, up)
            if cmd is not None:
                found, lo = cmd, mid + 1
            else:
                hi = mid - 1
        return found

    def _option(self, ctx: SimContext, candidates: tuple[int, ...], room: Room, up: np.ndarray) -> Command | None:
        """Delete the candidates if their pods fit on the other nodes, or replace them with one
        node cheaper than they are together if the rest fit on it; else None."""
        cm, st = ctx.cm, ctx.st
        trial = room.copy()
        dest = up.copy()
        dest[list(candidates)] = False
        pods = [w for n in candidates for w in node_pods(st, n)]
        left = place_first_fit(cm, trial, pods, dest)
        if not left:
            return Command(candidates)
        total = float(self.price[list(candidates)].sum())
        options = []
        for i, g in enumerate(self.groups):
            free = g.available(st)
            if len(free) and self.price[free[0]] < total - 1e-9:
                _, placed = pack_new_nodes(cm, left, int(free[0]), 1)
                if len(placed) == len(left):
                    options.append(i)
        g = self._cheapest(ctx, options)
        return None if g is None else Command(candidates, int(self.groups[g].available(st)[0]))

    def _remove(self, ctx: SimContext, nodes: tuple[int, ...]) -> None:
        st = ctx.st
        for n in nodes:
            st.drain(n, ctx.now_s, self.grace_s)
            self.deletions += 1
        st.power_down_drained(ctx.now_s, ctx.timing.sleep_s)
