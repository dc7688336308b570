"""The HorizontalPodAutoscaler that KEDA drives, for all workloads at once.

Per sync (every `hpa_sync_s`): with an AverageValue target T and a metric total M over the
current replicas R, the usage ratio is M / (T R); within the 10% tolerance nothing changes,
otherwise the recommendation is ceil(M / T), clamped to [min, max]. Scale-down is stabilised: the
HPA takes the highest recommendation of the last 300 s. Scale-up is limited to the larger of
+100% or +4 pods per period. KEDA's own 0 <-> 1 decision (IsActive) is applied when min is 0.
"""

from __future__ import annotations

import numpy as np

from wattwise.simulations.timing import ControlTiming


class Hpa:
    def __init__(self, n_workloads: int, timing: ControlTiming):
        self.timing = timing
        slots = max(1, int(np.ceil(timing.hpa_scale_down_window_s / timing.hpa_sync_s)) + 1)
        self.history = np.full((slots, n_workloads), -1, np.int64)   # past recommendations
        self.slot = 0

    def desired(self, current: np.ndarray, metric_total: np.ndarray, target: np.ndarray, min_r: np.ndarray,
                max_r: np.ndarray, active: np.ndarray | None = None) -> np.ndarray:
        t = self.timing
        cur = np.maximum(current, 0)
        ratio = np.divide(metric_total, target * np.maximum(cur, 1), out=np.ones(len(cur)), where=target > 0)
        within = (np.abs(ratio - 1.0) <= t.hpa_tolerance) & (cur > 0)
        rec = np.where(within, cur, np.ceil(np.round(metric_total / target, 6)))
        rec = np.clip(rec, np.maximum(min_r, 1 if active is None else 0), max_r).astype(np.int64)
        if active is not None:                 # KEDA: 0 <-> 1 from IsActive, only when min is 0
            rec = np.where((min_r == 0) & ~active, 0, np.maximum(rec, np.where(active, 1, 0)))
        self.history[self.slot % len(self.history)] = rec
        self.slot += 1
        stabilised = np.maximum(self.history.max(axis=0), rec)
        down = np.minimum(cur, stabilised)          # scaling down: the highest recent recommendation
        up_limit = np.maximum(np.ceil(cur * t.hpa_scale_up_factor), cur + t.hpa_scale_up_pods)
        up = np.minimum(rec, up_limit)
        return np.where(rec > cur, up, np.where(stabilised < cur, down, cur)).astype(np.int64)
