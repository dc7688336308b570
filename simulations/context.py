"""What a policy sees at a decision: the cluster model, its live state, the clock and the inputs."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from wattwise.simulations.cluster_model import ClusterModel
from wattwise.simulations.cluster_state import ClusterState
from wattwise.simulations.inputs import SimInputs
from wattwise.simulations.timing import ControlTiming


@dataclass
class SimContext:
    cm: ClusterModel
    st: ClusterState
    inputs: SimInputs
    timing: ControlTiming
    rng: np.random.Generator
    step: int = 0
    now_s: float = 0.0
    drop_history: np.ndarray = field(default=None)   # [slots, W] dropped fps of recent steps
    cpu_util: np.ndarray = field(default=None)        # [N] at the last step
    gpu_util: np.ndarray = field(default=None)

    @property
    def demand_fps(self) -> np.ndarray:
        return self.inputs.demand_fps[self.step]

    @property
    def carbon_g_per_kwh(self) -> np.ndarray:
        return self.inputs.carbon_g_per_kwh[self.step]

    def drop_metric_fps(self) -> np.ndarray:
        """drop_fps as the pipeline reports it: dropped frames per second averaged over its window."""
        return self.drop_history.mean(axis=0)
