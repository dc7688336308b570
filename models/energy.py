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


def estimate_capacity_fps(fps: np.ndarray, drop_fps: np.ndarray | None = None) -> tuple[float, float, bool]:
    """Capacity of one replica from per-replica samples: (capacity, std, saturated_seen).

    When the replica was seen saturated (frames dropped), its capacity is the median FPS it
    delivered while dropping. Otherwise only a lower bound is known: the 95th percentile of what
    it delivered, flagged by `saturated_seen` False.
    """
    fps = np.asarray(fps, dtype=float)
    if fps.size == 0:
        return 0.0, 0.0, False
    if drop_fps is not None:
        drop = np.asarray(drop_fps, dtype=float)
        saturated = fps[drop > 0.05 * np.maximum(fps, 1e-9)]
        if saturated.size >= 3:
            return float(np.median(saturated)), float(np.std(saturated)), True
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
