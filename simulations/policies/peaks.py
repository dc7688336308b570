"""`peaks`: default scaling; each new pod goes to the node whose power rises least (Kepler's
PEAKS). PEAKS fits K0 + K1 exp(K2 u) per node; here the node class's own curve (SPECpower points,
linear between them, plus GPU idle-to-board power) predicts the increase, from the node's current
utilisation to that plus the pod's share at full load."""

from __future__ import annotations

import numpy as np

from wattwise.simulations.context import SimContext
from wattwise.simulations.policies.base import pick_max
from wattwise.simulations.policies.default import DefaultPolicy


class PeaksPolicy(DefaultPolicy):
    name = "peaks"

    def place(self, ctx: SimContext, w: int, candidates: np.ndarray) -> int:
        cm = ctx.cm
        cpu = ctx.cpu_util[candidates]
        gpu = ctx.gpu_util[candidates]
        before = cm.cpu_power_w_at(candidates, cpu)
        after = cm.cpu_power_w_at(candidates, np.minimum(cpu + cm.cpu_share[w, candidates], 1.0))
        gpu_delta = cm.gpu_count[candidates] * cm.gpu_span_w[candidates] * (
            np.minimum(gpu + cm.gpu_share[w, candidates], 1.0) - np.minimum(gpu, 1.0))
        return pick_max(ctx, candidates, -np.round(after - before + gpu_delta, 6))
