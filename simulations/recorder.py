"""Totals and time series of one policy's run: what `summary.json` and the report are made of."""

from __future__ import annotations

import numpy as np

from wattwise.simulations.cluster_model import ClusterModel
from wattwise.simulations.physics import StepResult

SERIES_BUCKET_S = 900.0   # report series are averaged over 15 minutes


class Recorder:
    def __init__(self, cm: ClusterModel, n_steps: int, step_s: float):
        self.step_s = step_s
        self.per_bucket = max(1, int(round(SERIES_BUCKET_S / step_s)))
        B = (n_steps + self.per_bucket - 1) // self.per_bucket
        C = len(cm.class_names)
        self.energy_j = 0.0
        self.carbon_g = 0.0
        self.frames_demanded = 0.0
        self.frames_processed = 0.0
        self.replica_s = 0.0
        self.violation_s = 0.0
        self.untolerated_s = 0.0
        self.demand_fps = np.zeros(B)
        self.capacity_fps = np.zeros(B)
        self.served_fps = np.zeros(B)
        self.power_w = np.zeros(B)
        self.carbon_g_per_h = np.zeros(B)
        self.replicas_by_class = np.zeros((B, C))
        self.nodes_on = np.zeros(B)
        self.count = np.zeros(B)
        self._class_onehot = np.eye(C)[cm.class_idx]     # [N, C]
        self._zone_idx = cm.zone_idx
        self._zones = list(cm.zones)
        self._zone_onehot = np.eye(len(cm.zones))[cm.zone_idx]  # [N, Z]
        self.energy_j_by_zone = np.zeros(len(cm.zones))
        self.carbon_g_by_zone = np.zeros(len(cm.zones))

    def record(self, step: int, demand_fps: np.ndarray, result: StepResult, carbon_g_per_kwh: np.ndarray,
               pods_per_node: np.ndarray, nodes_on: int) -> None:
        dt = self.step_s
        power = result.node_power_w
        total_w = float(power.sum())
        carbon_rate_g_per_s = float(power @ carbon_g_per_kwh[self._zone_idx]) / 3.6e6
        self.energy_j += total_w * dt
        by_zone_w = power @ self._zone_onehot
        self.energy_j_by_zone += by_zone_w * dt
        self.carbon_g_by_zone += by_zone_w * carbon_g_per_kwh * dt / 3.6e6
        self.carbon_g += carbon_rate_g_per_s * dt
        self.frames_demanded += float(demand_fps.sum()) * dt
        self.frames_processed += float(result.served_fps.sum()) * dt
        self.replica_s += float(pods_per_node.sum()) * dt
        self.violation_s += result.violating_pods * dt
        self.untolerated_s += result.untolerated_pods * dt
        b = step // self.per_bucket
        self.count[b] += 1
        self.demand_fps[b] += demand_fps.sum()
        self.capacity_fps[b] += result.capacity_fps.sum()
        self.served_fps[b] += result.served_fps.sum()
        self.power_w[b] += total_w
        self.carbon_g_per_h[b] += carbon_rate_g_per_s * 3600
        self.replicas_by_class[b] += pods_per_node @ self._class_onehot
        self.nodes_on[b] += nodes_on

    def series(self) -> dict:
        n = np.maximum(self.count, 1)
        return {"demand_fps": self.demand_fps / n, "capacity_fps": self.capacity_fps / n,
                "served_fps": self.served_fps / n, "power_w": self.power_w / n,
                "carbon_g_per_h": self.carbon_g_per_h / n, "replicas_by_class": self.replicas_by_class / n[:, None],
                "nodes_on": self.nodes_on / n}

    def summary(self, scaling_events: int, extra: dict | None = None) -> dict:
        kwh = self.energy_j / 3.6e6
        dropped = self.frames_demanded - self.frames_processed
        per_frame = self.frames_processed if self.frames_processed > 0 else float("nan")
        out = {
            "energy_kwh": kwh,
            "carbon_kg": self.carbon_g / 1000.0,
            "frames_demanded": self.frames_demanded,
            "frames_processed": self.frames_processed,
            "sla_attainment": self.frames_processed / self.frames_demanded if self.frames_demanded > 0 else 1.0,
            "energy_j_per_frame": self.energy_j / per_frame,
            "carbon_mg_per_frame": self.carbon_g * 1000.0 / per_frame,
            "dropped_frames": dropped,
            "replica_hours": self.replica_s / 3600.0,
            "scaling_events": int(scaling_events),
            "confidentiality_violations": self.violation_s,
            "taint_violations": self.untolerated_s,
            "energy_kwh_by_zone": {z: float(e) / 3.6e6 for z, e in zip(self._zones, self.energy_j_by_zone)},
            "carbon_kg_by_zone": {z: float(c) / 1000.0 for z, c in zip(self._zones, self.carbon_g_by_zone)},
        }
        out.update(extra or {})
        return out
