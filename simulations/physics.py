"""One step of physics: frames arrive, ready replicas serve what they can, nodes draw power.

- Capacity of a workload = sum of its ready replicas' capacity (`snapshot.model()` per class),
  including evicted ones serving out their grace period.
- Frames beyond capacity are dropped. All frames served come from replicas whose frame time is
  within the SLA latency (the others are never eligible), so processed = within SLA.
- Frames are pulled from a shared queue, so every replica of a workload runs at the same load
  fraction rho = min(1, demand / capacity).
- Node CPU utilisation = sum over replicas of cpu_share * (standing + (1 - standing) * rho);
  starting replicas (VM boot, attestation, model decryption) count at full load. Power is the
  node class's curve at that utilisation (SPECpower points, linear between them) plus, per GPU,
  idle power and (board - idle) power scaled by GPU utilisation, computed the same way.
- A sleeping node draws `sleep_w`; a waking one `sleep_w + wake_energy_j / wake_s`; one going to
  sleep its idle power.
- Carbon = energy x the node's zone intensity at that time.
- Pods on a node whose taints (or selectors) they do not admit are counted, as TEE violations are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wattwise.simulations.cluster_model import OFF, ON, SLEEPING, WAKING, ClusterModel
from wattwise.simulations.cluster_state import ClusterState


@dataclass
class StepResult:
    capacity_fps: np.ndarray   # [W]
    served_fps: np.ndarray     # [W]
    dropped_fps: np.ndarray    # [W]
    node_power_w: np.ndarray   # [N]
    violating_pods: int        # confidential pods on nodes without an allowed TEE
    untolerated_pods: int = 0  # pods on nodes whose taints (or selectors) they do not admit


class Physics:
    def __init__(self, cm: ClusterModel):
        self.cm = cm
        self.k0 = cm.cpu_share * cm.standing
        self.k1 = cm.cpu_share * (1.0 - cm.standing)
        self.g0 = cm.gpu_share * cm.standing
        self.g1 = cm.gpu_share * (1.0 - cm.standing)
        self.violation_mask = (~cm.tee_ok) & cm.confidential[:, None]
        self.untolerated_mask = ~cm.admitted
        self._cache_version = -1
        self._state_id = None

    def _refresh(self, st: ClusterState) -> None:
        r = st.ready + st.terminating    # evicted pods serve until their grace ends
        b = st.booting
        self.cpu_base = (r * self.k0).sum(axis=0) + (b * self.cm.cpu_share).sum(axis=0)
        self.cpu_var = r * self.k1
        self.gpu_base = (r * self.g0).sum(axis=0) + (b * self.cm.gpu_share).sum(axis=0)
        self.gpu_var = r * self.g1
        self.violating = int(((r + b) * self.violation_mask).sum())
        self.untolerated = int(((r + b) * self.untolerated_mask).sum())
        state = st.node_state
        self.on = (state == ON)
        cm = self.cm
        self.off_power = np.where(state == OFF, cm.sleep_w, 0.0) + \
            np.where(state == WAKING, cm.sleep_w + cm.wake_energy_j / np.maximum(cm.wake_s, 1.0), 0.0)
        self.sleeping = (state == SLEEPING)
        self._cache_version = st.version
        self._state_id = id(st)

    def step(self, st: ClusterState, demand_fps: np.ndarray) -> StepResult:
        if st.version != self._cache_version or id(st) != self._state_id:
            self._refresh(st)
        cap = st.capacity_fps
        served = np.minimum(demand_fps, cap)
        rho = np.divide(served, cap, out=np.zeros_like(cap), where=cap > 0)
        cpu = self.cpu_base + rho @ self.cpu_var
        gpu = self.gpu_base + rho @ self.gpu_var
        on_power = self.cm.node_power_w(cpu, gpu)
        power = np.where(self.on | self.sleeping, on_power, 0.0) + self.off_power
        return StepResult(cap.copy(), served, demand_fps - served, power, self.violating, self.untolerated)
