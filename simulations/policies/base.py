"""The policy interface and the kube-scheduler / ReplicaSet behaviour every baseline shares."""

from __future__ import annotations

import numpy as np

from wattwise.models.delete_order import pods_to_delete
from wattwise.simulations.autoscaler_fit import eviction_grace_text
from wattwise.simulations.cluster_autoscaler import CaSettings, ClusterAutoscaler
from wattwise.simulations.cluster_model import ClusterModel
from wattwise.simulations.context import SimContext
from wattwise.simulations.scheduler_config import STOCK_PLUGINS, ScorePlugins


class Policy:
    name = "base"
    direct = False          # True: the policy sets replicas and node power itself (the oracle)
    # the HPA's scale-down stabilisation as this policy's ScaledObject sets it (None: the HPA's
    # default, `ControlTiming.hpa_scale_down_window_s`)
    hpa_scale_down_window_s: float | None = None

    def __init__(self, scenario, timing):
        self.scenario = scenario
        self.timing = timing

    def cluster_model(self, cm: ClusterModel) -> ClusterModel:
        """The cluster as this policy's pods see it: `cm`, the scenario's pod templates. A policy
        whose operator changed the templates (a required node affinity) returns the model built
        again from its own (`build_cluster_model`), so kube-scheduler's filters, the node
        autoscalers' scheduling simulation and the summary read them as any other."""
        return cm

    def start(self, ctx: SimContext) -> None:
        """Before the first step (all nodes start powered on)."""

    def on_tick(self, ctx: SimContext) -> None:
        """Every step, before the HPA."""

    def metric(self, ctx: SimContext):
        """(metric total [W], AverageValue target [W], IsActive [W] or None) for the HPA."""
        raise NotImplementedError

    def initial_replicas(self, ctx: SimContext) -> np.ndarray:
        """Replicas per workload at the start, where this policy's scaling would settle for the
        first step's demand: by default the fastest allowed class's capacity plus the planner's
        10% headroom."""
        cm = ctx.cm
        best_cap = np.array([cm.cap_fps[w][cm.eligible[w]].max() if cm.eligible[w].any() else 1.0
                             for w in range(cm.n_workloads)])
        return np.ceil(ctx.demand_fps * 1.1 / best_cap)

    def replica_bounds(self, ctx: SimContext):
        cm = ctx.cm
        return cm.min_replicas, cm.max_replicas

    def allowed(self, ctx: SimContext, w: int) -> np.ndarray:
        """Nodes the workload may ever run on: kube-scheduler's filters with the extender's TEE filter."""
        return ctx.cm.eligible[w]

    def place(self, ctx: SimContext, w: int, candidates: np.ndarray) -> int:
        """The cluster's default scheduler, as it comes: the baselines do not use the extender."""
        return pick_max(ctx, candidates, plugin_scores(ctx, w, candidates, STOCK_PLUGINS))

    def victims(self, ctx: SimContext, w: int, k: int) -> list[int]:
        return replicaset_victims(ctx, w, k)

    def manage_nodes(self, ctx: SimContext) -> None:
        """Wake or suspend nodes (the baselines leave every node on)."""

    def tuning(self, cm) -> dict:
        """What an operator set by hand for this policy (trigger targets, taints, scheduler, node
        autoscaler), for the summary."""
        return {}

    def stats(self) -> dict:
        """Counters for the summary (node autoscaler actions and the like)."""
        return {}


class ClusterAutoscaled:
    """Nodes come and go through cluster-autoscaler (`cluster_autoscaler.py`) with
    `node_autoscaler`'s flags: keda-tuned-ca and its pinned variant, and wattwise, which ships no
    node actuator of its own. Mixed in before `Policy`; the policy's `start` calls
    `start_autoscaler`, its `tuning` adds `autoscaler_tuning`."""

    node_autoscaler = CaSettings()

    def start_autoscaler(self, ctx: SimContext) -> None:
        self.autoscaler = ClusterAutoscaler(ctx, self.node_autoscaler)

    def manage_nodes(self, ctx: SimContext) -> None:
        self.autoscaler.step(ctx)

    def autoscaler_tuning(self, cm: ClusterModel) -> dict:
        """The preStop grace its drains need and its flags, as the summary names them."""
        return {**eviction_grace_text(cm), "node_autoscaler": self.node_autoscaler.describe()}

    def stats(self) -> dict:
        a = self.autoscaler
        return {"node_scale_ups": a.scale_ups, "node_removals": a.removals}


def default_plugin_scores(ctx: SimContext, w: int, candidates: np.ndarray) -> np.ndarray:
    """The plugin scores of the scheduler the WattWise extender is configured in
    (`ctx.timing.scheduler`, the shipped KubeSchedulerConfiguration); the extender's score x
    weight x 10 is added to these."""
    return plugin_scores(ctx, w, candidates, ctx.timing.scheduler.plugins)


def plugin_scores(ctx: SimContext, w: int, candidates: np.ndarray, plugins: ScorePlugins) -> np.ndarray:
    """kube-scheduler's scoring, each plugin 0..100 times its weight: NodeResourcesFit
    (LeastAllocated: free share; MostAllocated: used share; weighted by resource) and
    NodeResourcesBalancedAllocation on CPU and memory requested after placing the pod, and
    PodTopologySpread (`spread_scores`)."""
    cm, st = ctx.cm, ctx.st
    total_c, total_m = cm.total_cpu_m[candidates], cm.total_mem_mib[candidates]
    fc = (total_c - st.free_cpu_m[candidates] + cm.w_cpu_m[w]) / total_c
    fm = (total_m - st.free_mem_mib[candidates] + cm.w_mem_mib[w]) / total_m
    scores = np.zeros(len(candidates))
    if plugins.fit_weight:
        wc, wm = plugins.fit_cpu_weight, plugins.fit_memory_weight
        if plugins.fit_strategy == "MostAllocated":
            fit = np.floor((fc * wc + fm * wm) / (wc + wm) * 100)
        else:
            fit = np.floor(((1 - fc) * wc + (1 - fm) * wm) / (wc + wm) * 100)
        scores += plugins.fit_weight * fit
    if plugins.balanced_weight:
        scores += plugins.balanced_weight * np.floor((1 - np.abs(fc - fm) / 2) * 100)
    if plugins.spread_weight:
        scores += plugins.spread_weight * spread_scores(ctx, w, candidates)
    return scores


HOSTNAME_MAX_SKEW, ZONE_MAX_SKEW = 3, 5    # kube-scheduler's system default constraints (ScheduleAnyway)


def spread_scores(ctx: SimContext, w: int, candidates: np.ndarray) -> np.ndarray:
    """PodTopologySpread's normalised 0..100 for a pod with no constraints of its own, under the
    system defaults: per candidate, the workload's pods on the node times log(candidates + 2) plus
    its pods in the node's zone (over the nodes it may use) times log(zones among candidates + 2),
    each plus maxSkew - 1, rounded; then 100 x (max + min - s) / max in integers, so the node with
    fewest of the workload's pods scores 100 (kubernetes pkg/scheduler/framework/plugins/
    podtopologyspread/scoring.go)."""
    cm, st = ctx.cm, ctx.st
    pods = st.ready[w] + st.booting[w]
    zone = cm.zone_idx[candidates]
    in_zone = np.bincount(cm.zone_idx, weights=pods * cm.eligible[w], minlength=len(cm.zones))
    raw = (pods[candidates] * np.log(len(candidates) + 2) + (HOSTNAME_MAX_SKEW - 1)
           + in_zone[zone] * np.log(len(np.unique(zone)) + 2) + (ZONE_MAX_SKEW - 1))
    s = np.round(raw).astype(np.int64)
    top = int(s.max())
    if top == 0:
        return np.full(len(candidates), 100.0)
    return ((100 * (top + int(s.min()) - s)) // top).astype(float)


def pick_max(ctx: SimContext, candidates: np.ndarray, scores: np.ndarray) -> int:
    """The best-scored node; ties broken at random, as kube-scheduler's selectHost does."""
    best = np.flatnonzero(scores >= scores.max() - 1e-9)
    return int(candidates[best[0] if len(best) == 1 else ctx.rng.choice(best)])


def replicaset_victims(ctx: SimContext, w: int, k: int) -> list[int]:
    """The nodes of the `k` pods the ReplicaSet controller deletes, first to go first: its own
    order (`models.delete_order`: starting pods before ready ones, then pods doubled up on a node)."""
    pods, nodes = ctx.st.scale_down_pods(w)
    return [nodes[i] for i in pods_to_delete(pods, k)]
