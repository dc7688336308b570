"""`carbon-aware-keda`: `default`, with the ScaledObject's maxReplicaCount capped by carbon
intensity as Azure's carbon-aware-keda-operator does.

The operator reads a 24-hour forecast (refreshed every 12 h by the carbon-intensity exporter) and
`maxReplicasByCarbonIntensity`: thresholds in ascending order, each the upper limit of its bucket;
the highest bucket also applies above its threshold. Following its README, three equal buckets
between the forecast's min and max. The replica caps are ours (the README's example uses 110/60/10):
100%, 60% and 30% of the workload's max_replicas for low, medium, high. Perfect forecast: the
next 24 h of the replayed trace. The signal is the mean over the cluster's zones (the operator
works per cluster, not per node).
"""

from __future__ import annotations

import numpy as np

from wattwise.simulations.context import SimContext
from wattwise.simulations.policies.default import DefaultPolicy

BUCKET_SHARES = (1.0, 0.6, 0.3)
FORECAST_REFRESH_S = 12 * 3600.0
FORECAST_HORIZON_S = 24 * 3600.0


class CarbonAwareKedaPolicy(DefaultPolicy):
    name = "carbon-aware-keda"

    def start(self, ctx: SimContext) -> None:
        self._signal = ctx.inputs.carbon_g_per_kwh.mean(axis=1)
        self._thresholds = None
        self._refreshed_s = -np.inf

    def _refresh(self, ctx: SimContext) -> None:
        horizon = int(FORECAST_HORIZON_S // ctx.inputs.step_s)
        window = self._signal[ctx.step: ctx.step + max(horizon, 1)]
        lo, hi = float(window.min()), float(window.max())
        size = (hi - lo) / len(BUCKET_SHARES)
        self._thresholds = [lo + size * (i + 1) for i in range(len(BUCKET_SHARES))]
        self._refreshed_s = ctx.now_s

    def replica_bounds(self, ctx: SimContext):
        if ctx.now_s - self._refreshed_s >= FORECAST_REFRESH_S:
            self._refresh(ctx)
        now = self._signal[ctx.step]
        bucket = next((i for i, t in enumerate(self._thresholds) if now <= t), len(BUCKET_SHARES) - 1)
        lo, hi = super().replica_bounds(ctx)
        cap = np.maximum(np.ceil(hi * BUCKET_SHARES[bucket]), lo).astype(np.int64)
        return lo, cap
