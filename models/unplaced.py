"""Replicas the SLA needs that no node has room for now: asked for anyway.

When every qualifying node is full (or the nodes of a workload's TEE class are gone), the plan
places what fits. Answering KEDA with only those would scale the workload below what its demand
needs. Instead the scaler asks for the missing replicas too: they wait Pending, which is exactly
what a node autoscaler (cluster-autoscaler, Karpenter) acts on, and the extender's filter still
keeps a confidential one off every node without its TEE. Without a node autoscaler they stay
Pending and cost nothing.

How many: the capacity still missing (demand plus the workload's headroom, less what the placed
replicas give) over one replica's capacity on the qualifying class that serves a frame for the
fewest joules (the class the planner would fill first); never fewer than the plan's floor
(`min_replicas`, or the last trustworthy plan while telemetry is held) asks; never beyond
`max_replicas`. With no qualifying class left at all, the last trustworthy plan's replicas are
kept: there is nothing newer to size them by.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from wattwise.models.energy import WorkloadClassModel


def unplaced_replicas(demand_fps: float, headroom: float, capacity_fps: float, placed: int, short: bool,
                      class_models: Iterable[WorkloadClassModel], floor: int, last_trusted: int, max_replicas: int) -> int:
    """Replicas to ask for beyond the `placed` ones (see the module notes). `short`: the plan
    could not give the demand its capacity (unmet demand, or replicas the packing could not fit);
    `class_models`: the workload's models on the classes that qualify for it (none: no class left)."""
    usable = [m for m in class_models if m.capacity_fps > 0]
    need = 0
    if short and usable:
        best = min(usable, key=lambda m: (m.energy_j_per_frame_at_capacity(), -m.capacity_fps))
        missing_fps = demand_fps * (1.0 + headroom) - capacity_fps
        need = max(0, math.ceil(missing_fps / best.capacity_fps - 1e-9))
    elif short:
        need = last_trusted - placed
    need = max(need, floor - placed)
    return max(0, min(need, max_replicas - placed))
