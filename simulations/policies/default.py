"""`default`: what users run today.

Scaling: the reference pipeline's (intel/cloud-native-ai-pipeline) KEDA ScaledObject, a
`prometheus` trigger with query `sum(drop_fps)` and threshold 10 (AverageValue), through the HPA:
desired = ceil(sum of drop_fps / 10) outside the 10% tolerance, 300 s scale-down stabilisation.
Its minReplicaCount is 1: at zero replicas no pod would report drops, so it could never wake up.
Placement: kube-scheduler's default scoring (LeastAllocated + BalancedAllocation), blind to
energy; every node stays on.
"""

from __future__ import annotations

import numpy as np

from wattwise.simulations.context import SimContext
from wattwise.simulations.policies.base import Policy


class DefaultPolicy(Policy):
    name = "default"

    def metric(self, ctx: SimContext):
        W = ctx.cm.n_workloads
        return ctx.drop_metric_fps(), np.full(W, self.timing.drop_threshold_fps), None

    def replica_bounds(self, ctx: SimContext):
        cm = ctx.cm
        return np.maximum(cm.min_replicas, 1), cm.max_replicas

    def tuning(self, cm) -> dict:
        return {"trigger": f"KEDA prometheus trigger on sum(drop_fps), AverageValue {self.timing.drop_threshold_fps:g} "
                           "(the reference pipeline's)",
                "scheduler": "kube-scheduler default scoring", "node_autoscaler": "none: every node stays on"}
