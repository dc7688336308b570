"""`keda-tuned`, `keda-tuned-ca`, `keda-tuned-karpenter`: the peers a skeptic would pick.

Scaling: a KEDA `prometheus` trigger on the frames arriving per workload (say
`sum(rate(frames_received_total[1m]))`: the demand the WattWise scaler reads too, served plus
dropped FPS, at the same times), AverageValue target = 0.9 x one replica's capacity on the slowest
class its pods may land on, through the same HPA. Why 0.9: the HPA leaves the replicas alone while
the metric is within 10% of target x replicas, so a replica may carry up to target x 1.1 = 0.99 of
its capacity on that class before the HPA adds one; a higher target would overload it there.
kube-scheduler's scoring does not know which class is slow, so the operator sizes for the slowest
(`keda_pinned.py`'s peer pins each workload to one class instead and sizes for that).
minReplicaCount / maxReplicaCount are the workload's; IsActive while frames arrive.

- `keda-tuned`: kube-scheduler's default scoring; every node stays on (no node autoscaler).
- `keda-tuned-ca`: the scheduler profile that packs (NodeResourcesFit MostAllocated, CPU and
  memory weight 1, BalancedAllocation off: the plugins of WattWise's own second scheduler, without
  the extender) and cluster-autoscaler (`cluster_autoscaler.py`).
- `keda-tuned-karpenter`: the same packing profile and Karpenter with consolidation
  WhenEmptyOrUnderutilized, consolidateAfter 1 minute (`karpenter.py`). (Most
  Karpenter clusters run on EKS, whose default scheduler keeps its stock profile; the packing
  profile then needs a second scheduler. It is the stronger peer here: with the default scoring
  Karpenter used about 1% more energy on the bundled week, meeting the SLA as well.)

Like every policy here they run on GPU nodes tainted `nvidia.com/gpu=present:NoSchedule`, which
only GPU pods tolerate (`cluster_model.with_gpu_taint`).
"""

from __future__ import annotations

import numpy as np

from wattwise.simulations.autoscaler_fit import eviction_grace_text
from wattwise.simulations.karpenter import Karpenter, KarpenterSettings
from wattwise.simulations.cluster_model import GPU_TAINT, ClusterModel
from wattwise.simulations.context import SimContext
from wattwise.simulations.policies.base import ClusterAutoscaled, Policy, pick_max, plugin_scores
from wattwise.simulations.scheduler_config import STOCK_PLUGINS, ScorePlugins

TARGET_SHARE = 0.9
PACKING = ScorePlugins(fit_strategy="MostAllocated", balanced_weight=0, spread_weight=1)   # the shipped second scheduler's


def slowest_targets(cm: ClusterModel) -> tuple[np.ndarray, list[str]]:
    """Per workload: the trigger's target (fps per replica) and the slowest class it is sized for."""
    targets, classes = np.ones(cm.n_workloads), [""] * cm.n_workloads
    for w in range(cm.n_workloads):
        nodes = np.flatnonzero(cm.eligible[w])
        if len(nodes):
            n = nodes[np.argmin(cm.cap_fps[w, nodes])]
            targets[w] = TARGET_SHARE * cm.cap_fps[w, n]
            classes[w] = cm.class_names[cm.class_idx[n]]
    return targets, classes


def gpu_taint_text() -> str:
    return (f"GPU nodes tainted {GPU_TAINT.key}={GPU_TAINT.value}:{GPU_TAINT.effect.value}, "
            "tolerated by GPU pods only")


class KedaTunedPolicy(Policy):
    name = "keda-tuned"
    plugins = STOCK_PLUGINS

    def start(self, ctx: SimContext) -> None:
        self.target_fps, _ = slowest_targets(ctx.cm)

    def metric(self, ctx: SimContext):
        demand = ctx.demand_fps
        return demand, self.target_fps, demand > 0

    def initial_replicas(self, ctx: SimContext) -> np.ndarray:
        return np.ceil(np.round(ctx.demand_fps / slowest_targets(ctx.cm)[0], 6))

    def place(self, ctx: SimContext, w: int, candidates: np.ndarray) -> int:
        return pick_max(ctx, candidates, plugin_scores(ctx, w, candidates, self.plugins))

    def tuning(self, cm: ClusterModel) -> dict:
        targets, classes = slowest_targets(cm)
        return {
            "trigger": "KEDA prometheus trigger on incoming FPS, AverageValue per replica",
            "targets_fps": {wl.name: round(float(targets[w]), 2) for w, wl in enumerate(cm.snapshot.workloads)},
            "target_rule": f"{TARGET_SHARE} x one replica's capacity on the slowest class it may land on",
            "sized_for_class": {wl.name: classes[w] for w, wl in enumerate(cm.snapshot.workloads)},
            "taint": gpu_taint_text(),
            "scheduler": scheduler_text(self.plugins),
            "node_autoscaler": "none: every node stays on",
        }


class KedaTunedCaPolicy(ClusterAutoscaled, KedaTunedPolicy):
    name = "keda-tuned-ca"
    plugins = PACKING

    def start(self, ctx: SimContext) -> None:
        super().start(ctx)
        self.start_autoscaler(ctx)

    def tuning(self, cm: ClusterModel) -> dict:
        return {**super().tuning(cm), **self.autoscaler_tuning(cm)}


class KedaTunedKarpenterPolicy(KedaTunedPolicy):
    name = "keda-tuned-karpenter"
    plugins = PACKING
    settings = KarpenterSettings()

    def start(self, ctx: SimContext) -> None:
        super().start(ctx)
        self.autoscaler = Karpenter(ctx, self.settings)

    def manage_nodes(self, ctx: SimContext) -> None:
        self.autoscaler.step(ctx)

    def tuning(self, cm: ClusterModel) -> dict:
        s = self.settings
        return {**super().tuning(cm), **eviction_grace_text(cm), "node_autoscaler": (
            f"Karpenter NodePool, consolidationPolicy WhenEmptyOrUnderutilized, consolidateAfter "
            f"{s.consolidate_after_s:g}s, disruption budget nodes {s.budget_nodes_share:.0%}")}

    def stats(self) -> dict:
        a = self.autoscaler
        return {"node_launches": a.launches, "node_deletions": a.deletions, "node_replacements": a.replacements}


def scheduler_text(p: ScorePlugins) -> str:
    if p == STOCK_PLUGINS:
        return "kube-scheduler default scoring (LeastAllocated + BalancedAllocation, PodTopologySpread 2)"
    return f"kube-scheduler profile NodeResourcesFit {p.fit_strategy}" + (
        "" if p.balanced_weight else ", BalancedAllocation off") + f", PodTopologySpread {p.spread_weight}"

