"""The HorizontalPodAutoscaler that KEDA drives, for all workloads at once, on the simulation clock.

Per sync (every `hpa_sync_s`, at the time the engine passes in): with an AverageValue target T and
a metric total M over the current replicas R, the usage ratio is M / (T R); within the 10%
tolerance nothing changes, otherwise the recommendation is ceil(M / T), clamped to [min, max].
KEDA's own 0 <-> 1 decision (IsActive) is applied when min is 0.

Windows are in seconds, as kube-controller-manager keeps them (pkg/controller/podautoscaler,
`stabilizeRecommendationWithBehaviors`, `calculateScaleUpLimitWithScalingRules`):
- Scale-down stabilisation: a recommendation below the current count is raised to the highest
  recommendation made after now - window (a sample exactly at the cutoff is out); window 0 keeps
  the current one alone. The result is clamped to the bounds as they are now.
- Scale-up policies: the larger of +100% or +4 pods over the replicas at the start of the period
  (current minus the HPA's own scale-ups in the last `hpa_scale_up_period_s`, 15 s). The default
  scale-down policy (100% per 15 s) limits nothing, so it is not modelled.

The HPA with no `behavior` (the baselines' ScaledObjects) counts a sample exactly at the cutoff, but
its syncs are 15 s plus processing apart, so the 20th sync back is already outside the window.
"""

from __future__ import annotations

import numpy as np

from wattwise.simulations.timing import ControlTiming


class Hpa:
    def __init__(self, n_workloads: int, timing: ControlTiming):
        self.timing = timing
        self.n_workloads = n_workloads
        self.recommendations: list[tuple[float, np.ndarray]] = []   # (sync time [s], raw recommendation)
        self.scale_ups: list[tuple[float, np.ndarray]] = []         # (sync time [s], pods added)

    def desired(self, now_s: float, current: np.ndarray, metric_total: np.ndarray, target: np.ndarray,
                min_r: np.ndarray, max_r: np.ndarray, active: np.ndarray | None = None) -> np.ndarray:
        """The replica count the HPA sets at its sync at `now_s` (seconds of the simulation clock)."""
        t = self.timing
        cur = np.maximum(current, 0).astype(np.int64)
        rec = recommendation(cur, metric_total, target, min_r, max_r, active, t.hpa_tolerance)
        recent = self._highest_since(now_s - t.hpa_scale_down_window_s, rec)
        # kube's stabilizeRecommendationWithBehaviors: the current count, lowered to the window's
        # highest recommendation, never raised by it (a scale-down never becomes a scale-up)
        stabilised = np.where(rec < cur, np.minimum(cur, np.maximum(np.minimum(recent, max_r), rec)), rec)
        limit = self._scale_up_limit(now_s, cur)
        desired = np.where(stabilised > cur, np.minimum(stabilised, limit), stabilised).astype(np.int64)
        self.recommendations.append((now_s, rec))
        self.scale_ups.append((now_s, np.maximum(desired - cur, 0)))
        return desired

    def _highest_since(self, cutoff_s: float, rec: np.ndarray) -> np.ndarray:
        """The highest of `rec` and the recommendations made strictly after `cutoff_s`; older ones
        are forgotten."""
        self.recommendations = [(at_s, r) for at_s, r in self.recommendations if at_s > cutoff_s]
        return np.max([rec] + [r for _, r in self.recommendations], axis=0)

    def _scale_up_limit(self, now_s: float, cur: np.ndarray) -> np.ndarray:
        """The most replicas the scale-up policies allow now: the larger of x factor or + pods over
        the count at the start of the period, never below the current count."""
        t = self.timing
        self.scale_ups = [(at_s, n) for at_s, n in self.scale_ups if at_s > now_s - t.hpa_scale_up_period_s]
        added = np.sum([n for _, n in self.scale_ups], axis=0) if self.scale_ups else 0
        start = cur - added
        limit = np.maximum(np.ceil(start * t.hpa_scale_up_factor), start + t.hpa_scale_up_pods)
        return np.maximum(limit, cur).astype(np.int64)


def recommendation(cur: np.ndarray, metric_total: np.ndarray, target: np.ndarray, min_r: np.ndarray,
                   max_r: np.ndarray, active: np.ndarray | None, tolerance: float) -> np.ndarray:
    """One sync's unstabilised recommendation: ceil(M / T) outside the tolerance, within [min, max],
    with KEDA's 0 <-> 1 from IsActive where min is 0."""
    ratio = np.divide(metric_total, target * np.maximum(cur, 1), out=np.ones(len(cur)), where=target > 0)
    within = (np.abs(ratio - 1.0) <= tolerance) & (cur > 0)
    rec = np.where(within, cur, np.ceil(np.round(metric_total / target, 6)))
    rec = np.clip(rec, np.maximum(min_r, 1 if active is None else 0), max_r).astype(np.int64)
    if active is not None:                 # KEDA: 0 <-> 1 from IsActive, only when min is 0
        rec = np.where((min_r == 0) & ~active, 0, np.maximum(rec, np.where(active, 1, 0)))
    return rec
