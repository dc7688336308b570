"""Capacity learned from drops: a replica that drops frames shows what its pair can really do.

A replica is saturated when it drops frames (`drop_fps` above `drop_fraction` of what it delivers)
or delivers less than it was asked for (below `1 - shortfall_fraction` of `requested_fps`): the
rule `energy.saturated`, which a fit's capacity (`energy.estimate_capacity_fps`) uses too. What it delivers then bounds the capacity of its
(workload, node class) pair from above. Only a bound below the plan says the plan is wrong: when
the median over the pair's saturated replicas is below `margin` (0.95) of the capacity the plan
used, `margin` times that median is the pair's new capacity. A replica that delivers the planned
capacity and drops the rest was asked for more than the plan gives one replica (streams split
unevenly, demand rising before new replicas are up); that says nothing against the capacity, and
lowering it 5% on every such overload would hold replicas the pair does not need.
Pure: the live loop applies the result (`apply_corrections`) within one refresh, and the next
refit, whose capacity estimate reads the same drops, makes it part of the model.

Never raised, only lowered; a replica delivering nothing (starting, stalled, its stream gone)
says nothing about capacity and is left out, so a stall never sets a capacity of zero.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

import numpy as np

from wattwise.models.energy import DROP_FRACTION, SHORTFALL_FRACTION, WorkloadClassModel, saturated
from wattwise.models.reason import Reason

Pair = tuple[str, str]


@dataclass(frozen=True)
class ReplicaRate:
    """What one replica delivered over the last window (the reference pipeline's 60 s gauges)."""

    workload: str
    node_class: str
    delivered_fps: float
    drop_fps: float = 0.0
    requested_fps: float | None = None  # the rate it was asked for, when known


@dataclass(frozen=True)
class CorrectionSettings:
    margin: float = 0.95
    drop_fraction: float = DROP_FRACTION
    shortfall_fraction: float = SHORTFALL_FRACTION
    min_replicas: int = 1  # saturated replicas needed; one is enough to err on the safe side


@dataclass(frozen=True)
class CapacityCorrection:
    workload: str
    node_class: str
    capacity_fps: float          # the lowered capacity of one replica
    planned_capacity_fps: float  # what the plan used
    saturated_replicas: int
    median_fps: float            # delivered by the saturated replicas (median)
    reason: Reason


def is_saturated(r: ReplicaRate, settings: CorrectionSettings = CorrectionSettings()) -> bool:
    return bool(saturated(r.delivered_fps, r.drop_fps, r.requested_fps, settings.drop_fraction,
                          settings.shortfall_fraction))


def lowered_capacities(planned_capacity_fps: Mapping[Pair, float], replicas: Iterable[ReplicaRate],
                       settings: CorrectionSettings = CorrectionSettings()) -> dict[Pair, CapacityCorrection]:
    """Per pair of the plan whose saturated replicas delivered less than its capacity: the lowered one."""
    saturated: dict[Pair, list[float]] = {}
    for r in replicas:
        pair = (r.workload, r.node_class)
        if pair in planned_capacity_fps and is_saturated(r, settings):
            saturated.setdefault(pair, []).append(float(r.delivered_fps))
    out = {}
    for pair, delivered in sorted(saturated.items()):
        if len(delivered) < settings.min_replicas:
            continue
        planned = float(planned_capacity_fps[pair])
        median = float(np.median(delivered))
        if not median < settings.margin * planned:
            continue                    # it reached the plan's capacity: overloaded, not slower
        bound = settings.margin * median
        reason = Reason(f"capacity of {pair[0]} on {pair[1]} lowered from {planned:.1f} to {bound:.1f} fps: "
                        f"{len(delivered)} replica(s) dropped frames at a median {median:.1f} fps "
                        f"(x{settings.margin:g})", "capacity_from_drops")
        out[pair] = CapacityCorrection(pair[0], pair[1], bound, planned, len(delivered), median, reason)
    return out


def apply_corrections(models: Mapping[Pair, WorkloadClassModel],
                      corrections: Mapping[Pair, CapacityCorrection]) -> dict[Pair, WorkloadClassModel]:
    """`models` with each corrected pair's capacity lowered (never raised); others unchanged."""
    out = dict(models)
    for pair, c in corrections.items():
        m = out.get(pair)
        if m is not None and c.capacity_fps < m.capacity_fps:
            out[pair] = replace(m, capacity_fps=c.capacity_fps, source=f"{m.source}+drops")
    return out
