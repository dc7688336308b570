"""Control-plane timing that makes real clusters lag, in seconds of the simulation clock.

Facts: KEDA polls every `pollingInterval` (default 30 s) and the HPA syncs every 15 s with a 10%
tolerance and a 300 s scale-down stabilisation window; the HPA's default scale-up policy allows
the larger of +100% or +4 pods per 15 s. All are seconds of the simulation clock: a step longer
than the sync period runs every sync that falls in it (simulations/engine.py). The reference
pipeline (intel/cloud-native-ai-pipeline) scales its inference pods with a KEDA `prometheus` trigger on `sum(drop_fps)` with threshold 10
(AverageValue), and `drop_fps` is a gauge averaged over 60 s. Replica start-up and node wake
times are per node class (scenario `startup_s`, `startup_tee_s`, `wake_s`). The scheduler the
extender runs in (its weight, the score plugins) is what deploy/examples ships
(simulations/scheduler_config.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from wattwise.models.replan import ReplanSettings
from wattwise.simulations.scheduler_config import SECOND_SCHEDULER, SchedulerConfig


@dataclass(frozen=True)
class ControlTiming:
    keda_polling_s: float = 30.0
    hpa_sync_s: float = 15.0
    hpa_tolerance: float = 0.10
    hpa_scale_down_window_s: float = 300.0
    hpa_scale_up_pods: int = 4
    hpa_scale_up_factor: float = 2.0          # +100% per scale-up period
    hpa_scale_up_period_s: float = 15.0       # the default scale-up policies' periodSeconds
    drop_metric_window_s: float = 60.0
    drop_threshold_fps: float = 10.0          # the reference pipeline's ScaledObject threshold
    sleep_s: float = 30.0                     # suspend takes this long at idle power (no class field yet)
    replan: ReplanSettings = ReplanSettings()  # when wattwise re-plans (models/replan.py)
    scheduler: SchedulerConfig = SECOND_SCHEDULER  # the shipped KubeSchedulerConfiguration wattwise runs in
    oracle_interval_s: float = 900.0          # oracle re-plans this often for the window's peak

    @property
    def extender_weight(self) -> int:
        """KubeSchedulerConfiguration extenders[].weight: score x weight x 10 is added to the plugins'."""
        return self.scheduler.extender_weight
