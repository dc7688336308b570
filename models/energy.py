"""What one replica of a workload costs and delivers on one node class."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from wattwise.models.replica_model import ReplicaPowerModel


@dataclass(frozen=True)
class WorkloadClassModel:
    """Energy model of a (workload, node class) pair.

    `capacity_fps`: the most FPS one replica sustains within the SLA latency. `prior` is True
    while the pair has no measurements of its own and the numbers come from a hardware profile.
    `workload` is the workload key (namespace/name) or its model type for shared priors.
    """

    workload: str
    node_class: str
    power: ReplicaPowerModel = field(compare=False)
    capacity_fps: float
    capacity_std_fps: float = 0.0
    prior: bool = True
    n_samples: int = 0
    source: str = "prior"

    @property
    def intercept_w(self) -> float:
        return float(self.power.intercept_)

    @property
    def w_per_fps(self) -> float:
        return float(self.power.coef_[0])

    @property
    def power_std_w(self) -> float:
        return float(self.power.residual_std_w_)

    def replica_power_w(self, fps: float) -> float:
        return self.power.power_w(min(max(fps, 0.0), self.capacity_fps))

    def energy_j_per_frame_at_capacity(self) -> float:
        return self.replica_power_w(self.capacity_fps) / self.capacity_fps if self.capacity_fps > 0 else float("inf")

    def frame_time_ms(self) -> float:
        """Service time of one frame on one (single-threaded) replica at full rate."""
        return 1000.0 / self.capacity_fps if self.capacity_fps > 0 else float("inf")


DROP_FRACTION = 0.05       # dropping more than this share of what it delivers: saturated
SHORTFALL_FRACTION = 0.05  # delivering less than this share below what it was asked for: saturated


def saturated(delivered_fps, drop_fps=None, requested_fps=None, drop_fraction: float = DROP_FRACTION,
              shortfall_fraction: float = SHORTFALL_FRACTION) -> np.ndarray:
    """Per sample, whether the replica was saturated: it delivered something and dropped frames
    (above `drop_fraction` of what it delivered), or delivered below `1 - shortfall_fraction` of the
    rate it was asked for (`requested_fps`, NaN or None where unknown). A replica delivering nothing
    (starting, stalled) says nothing about capacity. The one rule for the live loop's correction
    (`capacity_correction.is_saturated`) and a fit's capacity (`estimate_capacity_fps`)."""
    fps = np.asarray(delivered_fps, dtype=float)
    out = np.zeros(fps.shape, dtype=bool)
    if drop_fps is not None:
        out |= np.asarray(drop_fps, dtype=float) > drop_fraction * fps
    if requested_fps is not None:
        asked = np.asarray(requested_fps, dtype=float)
        with np.errstate(invalid="ignore"):
            out |= np.isfinite(asked) & (fps < (1.0 - shortfall_fraction) * asked)
    return out & (fps > 0)


def estimate_capacity_fps(fps: np.ndarray, drop_fps: np.ndarray | None = None,
                          requested_fps: np.ndarray | None = None) -> tuple[float, float, bool]:
    """Capacity of one replica from per-replica samples: (capacity, std, saturated_seen).

    When the replica was seen saturated (`saturated`: frames dropped, or delivered below the rate
    asked for) at least 3 times, its capacity is the median FPS it delivered then. Otherwise only a
    lower bound is known: the 95th percentile of what it delivered, flagged by `saturated_seen` False.
    """
    fps = np.asarray(fps, dtype=float)
    if fps.size == 0:
        return 0.0, 0.0, False
    full = fps[saturated(fps, drop_fps, requested_fps)]
    if full.size >= 3:
        return float(np.median(full)), float(np.std(full)), True
    return float(np.percentile(fps, 95)), float(np.std(fps[fps >= np.percentile(fps, 80)])), False

def with_known_capacity(model: WorkloadClassModel, saturated: bool,
                        known: WorkloadClassModel | None) -> WorkloadClassModel:
    """`model` (a fit) with the capacity it can stand behind. Measured from saturated samples, its
    own. Otherwise its capacity is only a lower bound (what the replica was asked for, not what it
    can do): the capacity `known` before (the model in use, or the prior) stands when higher, or a
    fit over a quiet window would cut capacity without a frame dropped and plan replicas no one needs."""
    if saturated or known is None or not known.capacity_fps > model.capacity_fps:
        return model
    return replace(model, capacity_fps=known.capacity_fps, capacity_std_fps=known.capacity_std_fps)
