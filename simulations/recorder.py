"""Totals and time series of one policy's run: what `summary.json` and the report are made of.

Per workload: frames demanded and processed, and energy apportioned from each node's power to the
pods on it by each pod's share of the node's CPU at full load (`ClusterModel.cpu_share`), the
placement read when it changes but at most once a minute of simulated time (reading it costs a
pass over workloads x nodes); a node without pods (kept on idle, asleep, waking) is counted apart,
as `energy_kwh_without_pods`, so the workloads' energy and that add up to the total.
"""

from __future__ import annotations

import numpy as np

from wattwise.simulations.cluster_model import ClusterModel
from wattwise.simulations.physics import StepResult

SERIES_BUCKET_S = 900.0   # report series are averaged over 15 minutes
SHARES_REFRESH_S = 60.0   # the placement the energy per workload is shared by: read at most once a minute


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
        self._workloads = [w.key for w in cm.snapshot.workloads]
        self._cpu_share = cm.cpu_share                           # [W, N]
        self.frames_demanded_by_workload = np.zeros(cm.n_workloads)
        self.frames_processed_by_workload = np.zeros(cm.n_workloads)
        self.energy_j_by_workload = np.zeros(cm.n_workloads)
        self.energy_j_without_pods = 0.0
        self._node_j = np.zeros(cm.n_nodes)    # node energy since the placement last changed
        self._placement_version = None
        self._shares_until_s = 0.0
        self._shares = None                    # ([W, N] CPU per workload and node, [N] 1 / its total)
        self._pods = np.zeros((cm.n_workloads, cm.n_nodes), np.int64)
        self._cpu = np.zeros((cm.n_workloads, cm.n_nodes))

    def record(self, step: int, demand_fps: np.ndarray, result: StepResult, carbon_g_per_kwh: np.ndarray,
               pods_per_node: np.ndarray, nodes_on: int, state=None) -> None:
        """`state` (the `ClusterState`) gives the pods per workload and node, for the energy per
        workload; without it that is not recorded."""
        dt = self.step_s
        power = result.node_power_w
        if state is not None:
            now_s = step * dt
            if state.version != self._placement_version and now_s >= self._shares_until_s:
                self._apportion()
                self._shares = self._cpu_shares(state)
                self._placement_version = state.version
                self._shares_until_s = now_s + SHARES_REFRESH_S
            self._node_j += power * dt
        self.frames_demanded_by_workload += demand_fps * dt
        self.frames_processed_by_workload += result.served_fps * dt
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

    def _cpu_shares(self, state) -> tuple[np.ndarray, np.ndarray]:
        """Each workload's CPU on each node at full load, and 1 / the node's total (0 without pods)."""
        cpu = np.add(state.ready, state.booting, out=self._pods)
        cpu += state.terminating
        cpu = np.multiply(cpu, self._cpu_share, out=self._cpu)
        total = cpu.sum(axis=0)
        return cpu, np.divide(1.0, total, out=np.zeros_like(total), where=total > 0)

    def _apportion(self) -> None:
        """Energy of the nodes since the placement last changed, to the workloads on them."""
        if self._shares is None:
            return
        cpu, inv_total = self._shares
        self.energy_j_by_workload += cpu @ (self._node_j * inv_total)
        self.energy_j_without_pods += float(self._node_j[inv_total == 0].sum())
        self._node_j[:] = 0.0

    def by_workload(self) -> dict:
        """Per workload key: frames demanded and processed, SLA attainment, and energy (kWh, None
        when the placement was not recorded)."""
        self._apportion()
        apportioned = self._shares is not None
        out = {}
        for i, key in enumerate(self._workloads):
            demanded, processed = float(self.frames_demanded_by_workload[i]), float(self.frames_processed_by_workload[i])
            out[key] = {"frames_demanded": demanded, "frames_processed": processed,
                        "sla_attainment": processed / demanded if demanded > 0 else 1.0,
                        "energy_kwh": float(self.energy_j_by_workload[i]) / 3.6e6 if apportioned else None}
        return out

    def series(self) -> dict:
        n = np.maximum(self.count, 1)
        return {"demand_fps": self.demand_fps / n, "capacity_fps": self.capacity_fps / n,
                "served_fps": self.served_fps / n, "power_w": self.power_w / n,
                "carbon_g_per_h": self.carbon_g_per_h / n, "replicas_by_class": self.replicas_by_class / n[:, None],
                "nodes_on": self.nodes_on / n, "bucket_s": self.count * self.step_s}

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
            "by_workload": self.by_workload(),
            "energy_kwh_without_pods": self.energy_j_without_pods / 3.6e6 if self._shares is not None else None,
        }
        out.update(extra or {})
        return out
