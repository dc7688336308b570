"""cluster-autoscaler, with its default flags, over the scenario's nodes as node groups.

- Scale-up: when pods are pending (kube-scheduler found no node) and the nodes already starting
  will not take them, it simulates them on an empty node of each group that has a node left to
  add, picks a group with the `least-waste` expander (the least idle CPU + memory share on the new
  nodes; ties at random; the default expander is `random`, least-waste is the common choice for
  clusters of unlike node types) and adds as many nodes as the first-fit estimate needs. A new
  node is schedulable after its class's node start time (`wake_s`). One scale-up per scan
  (`--scan-interval` 10 s), so up to step / 10 s of them per step.
- Scale-down: a node is unneeded when the requests on it are below
  `--scale-down-utilization-threshold` (0.5) of its allocatable (the larger of CPU and memory; GPU
  nodes by their GPUs alone) and its pods fit on other nodes that are not themselves going (the
  pods' filters and free room, simulated node by node from the emptiest, taking the room). It is
  removed once unneeded for `--scale-down-unneeded-time` (10 min), but never within
  `--scale-down-delay-after-add` (10 min) of a scale-up nor `--scale-down-delay-after-delete`
  (the scan interval) of a removal. Empty nodes go together (`--max-empty-bulk-delete` 10); one
  node with pods is drained at a time (`--max-drain-parallelism` 1): its pods are evicted, their
  replacements start elsewhere, and it is powered down (it draws its sleep power) once the last
  evicted pod has gone (`ClusterState.drain`: each serves until a replacement can be ready).
  Unneeded timers keep running through the delays, as in cluster-autoscaler.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wattwise.simulations.autoscaler_fit import (Room, eviction_grace_s, node_groups, node_pods, pack_new_nodes,
                                                 place_first_fit, uncovered_pending)
from wattwise.simulations.context import SimContext


@dataclass(frozen=True)
class CaSettings:
    scan_interval_s: float = 10.0
    utilization_threshold: float = 0.5
    unneeded_s: float = 600.0
    delay_after_add_s: float = 600.0
    delay_after_delete_s: float = 10.0
    max_empty_bulk_delete: int = 10
    max_drain_parallelism: int = 1

    def describe(self) -> str:
        """As the summary's `node_autoscaler` names it (the same text for every policy it runs with)."""
        return (f"cluster-autoscaler, expander least-waste, scale-down-utilization-threshold "
                f"{self.utilization_threshold}, scale-down-unneeded-time {self.unneeded_s / 60:g}m, "
                f"scale-down-delay-after-add {self.delay_after_add_s / 60:g}m")


class ClusterAutoscaler:
    def __init__(self, ctx: SimContext, settings: CaSettings = CaSettings()):
        self.settings = settings
        self.groups = node_groups(ctx.cm)
        self.grace_s = eviction_grace_s(ctx.cm)
        self.unneeded_since_s = np.full(ctx.cm.n_nodes, np.nan)
        self.last_scale_up_s = -np.inf
        self.last_delete_s = -np.inf
        self.scale_ups = 0
        self.removals = 0

    def step(self, ctx: SimContext) -> None:
        ctx.st.power_down_drained(ctx.now_s, ctx.timing.sleep_s)
        self.scale_up(ctx)
        self.update_unneeded(ctx)
        self.scale_down(ctx)

    # --- scale-up -----------------------------------------------------------------------------
    def scale_up(self, ctx: SimContext) -> None:
        cm, st = ctx.cm, ctx.st
        for _ in range(max(1, int(round(ctx.inputs.step_s / self.settings.scan_interval_s)))):
            pods = uncovered_pending(cm, st)
            if not pods:
                return
            options = []
            for g in self.groups:
                free = g.available(st)
                if not len(free):
                    continue
                template = int(free[0])
                k, placed = pack_new_nodes(cm, pods, template, len(free))
                if not k:
                    continue
                cpu = sum(cm.w_cpu_m[w] for w in placed) / (k * cm.alloc_cpu_m[template])
                mem = sum(cm.w_mem_mib[w] for w in placed) / (k * cm.alloc_mem_mib[template])
                options.append(((1 - cpu) + (1 - mem), free[:k]))
            if not options:
                return
            waste = np.array([round(o[0], 9) for o in options])
            best = np.flatnonzero(waste == waste.min())
            _, nodes = options[int(best[0] if len(best) == 1 else ctx.rng.choice(best))]
            for n in nodes:
                st.wake(int(n), ctx.now_s)
            self.last_scale_up_s = ctx.now_s
            self.scale_ups += 1

    # --- scale-down ---------------------------------------------------------------------------
    def utilization(self, ctx: SimContext) -> np.ndarray:
        """Requests over allocatable per node: the larger of CPU and memory, GPUs alone on GPU nodes."""
        cm, st = ctx.cm, ctx.st
        cpu = (cm.total_cpu_m - st.free_cpu_m) / cm.total_cpu_m
        mem = (cm.total_mem_mib - st.free_mem_mib) / cm.total_mem_mib
        gpu = np.divide(cm.alloc_gpu - st.free_gpu, cm.alloc_gpu, out=np.zeros(cm.n_nodes), where=cm.alloc_gpu > 0)
        return np.where(cm.alloc_gpu > 0, gpu, np.maximum(cpu, mem))

    def update_unneeded(self, ctx: SimContext) -> np.ndarray:
        cm, st = ctx.cm, ctx.st
        up = st.schedulable
        util = self.utilization(ctx)
        candidates = np.flatnonzero(up & ~cm.pinned & (util < self.settings.utilization_threshold))
        room = Room.of(st)
        going = np.zeros(cm.n_nodes, bool)
        for n in candidates[np.argsort(util[candidates], kind="stable")]:
            trial = room.copy()
            dest = up & ~going
            dest[n] = False
            if not place_first_fit(cm, trial, node_pods(st, int(n)), dest):
                room = trial
                going[n] = True
        newly = going & np.isnan(self.unneeded_since_s)
        self.unneeded_since_s[newly] = ctx.now_s
        self.unneeded_since_s[~going] = np.nan
        return going

    def scale_down(self, ctx: SimContext) -> None:
        s, st, now = self.settings, ctx.st, ctx.now_s
        if now - self.last_scale_up_s < s.delay_after_add_s or now - self.last_delete_s < s.delay_after_delete_s:
            return
        due = np.flatnonzero(now - np.nan_to_num(self.unneeded_since_s, nan=np.inf) >= s.unneeded_s)
        if not len(due):
            return
        pods = st.pods_on()
        empty = [int(n) for n in due if pods[n] == 0][:s.max_empty_bulk_delete]
        busy = [int(n) for n in due if pods[n] > 0][:s.max_drain_parallelism]
        for n in empty + busy:
            st.drain(n, now, self.grace_s)
            st.power_down_drained(now, ctx.timing.sleep_s)
            self.unneeded_since_s[n] = np.nan
            self.removals += 1
        self.last_delete_s = now
