"""The simulated HPA behind the `wattwise` policy is configured as deploy/examples' ScaledObjects
configure it: no scale-down stabilisation of its own (the planner already holds each workload's
peak over its scale-down window); every other policy keeps the HPA's default 300 s. Its windows
are seconds of the simulation clock, whatever the step."""

from types import SimpleNamespace

import numpy as np
import yaml

from wattwise.simulations.engine import _hpa_syncs
from wattwise.simulations.hpa import Hpa
from wattwise.simulations.policies.keda_tuned import KedaTunedPolicy
from wattwise.simulations.policies.wattwise_policy import SHIPPED_HPA_SCALE_DOWN_WINDOW_S, WattwisePolicy
from wattwise.simulations.timing import ControlTiming

from .conftest import REPO

ONE = np.ones(1)


def test_the_wattwise_policys_hpa_window_is_the_shipped_scaledobjects():
    for name in ("scaledobject-external.yaml", "scaledobject-external-push.yaml"):
        obj = yaml.safe_load((REPO / "deploy" / "examples" / name).read_text())
        behaviour = obj["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
        assert behaviour["scaleDown"]["stabilizationWindowSeconds"] == SHIPPED_HPA_SCALE_DOWN_WINDOW_S, name
        assert "scaleUp" not in behaviour, name        # scale-up stays the HPA's default
    assert WattwisePolicy.hpa_scale_down_window_s == SHIPPED_HPA_SCALE_DOWN_WINDOW_S
    assert KedaTunedPolicy.hpa_scale_down_window_s is None       # the HPA's default, 300 s


def test_without_stabilisation_the_hpa_follows_a_lower_recommendation_at_the_next_sync():
    timing = ControlTiming()
    for window_s, after_drop in ((300.0, 10), (0.0, 6)):
        hpa = Hpa(1, ControlTiming(hpa_scale_down_window_s=window_s))
        assert hpa.desired(0.0, np.array([10]), np.array([10.0]), ONE, ONE, 100 * ONE)[0] == 10
        assert hpa.desired(15.0, np.array([10]), np.array([6.0]), ONE, ONE, 100 * ONE)[0] == after_drop
    assert timing.hpa_scale_down_window_s == 300.0


def test_the_scale_down_window_is_300_seconds_and_leaves_out_a_recommendation_exactly_300_s_old():
    """kube-controller-manager keeps recommendations made after now - window (`timestamp.After(cutoff)`)."""
    hpa = Hpa(1, ControlTiming())
    cur = hpa.desired(0.0, np.array([10]), np.array([10.0]), ONE, ONE, 100 * ONE)
    at = {}
    for sync_s in np.arange(15.0, 316.0, 15.0):
        cur = hpa.desired(sync_s, cur, np.array([2.0]), ONE, ONE, 100 * ONE)
        at[sync_s] = int(cur[0])
    assert at[285.0] == 10 and at[300.0] == 2


def test_a_rate_limited_scale_up_then_a_lower_recommendation_never_scales_up():
    """The window's higher recommendation (20, held back to 6 by the scale-up limit) only stops a
    scale-down: kube's stabilisation clamps the current count between the limits, so asked for 3
    the HPA stays at 6 (it went to 12 and 20, adding replicas as demand fell)."""
    hpa = Hpa(1, ControlTiming())
    cur = hpa.desired(0.0, np.array([2]), np.array([20.0]), ONE, ONE, 100 * ONE)
    assert int(cur[0]) == 6
    for sync_s in (15.0, 30.0, 45.0):
        cur = hpa.desired(sync_s, cur, np.array([3.0]), ONE, ONE, 100 * ONE)
        assert int(cur[0]) == 6, sync_s


def test_scale_up_policies_count_the_pods_added_in_their_15_s_period():
    """Syncing every 5 s does not triple the rate: +100% or +4 pods per 15 s, over the period's start."""
    hpa = Hpa(1, ControlTiming(hpa_sync_s=5.0))
    cur = np.array([1])
    seen = []
    for sync_s in (0.0, 5.0, 10.0, 15.0):
        cur = hpa.desired(sync_s, cur, np.array([100.0]), ONE, ONE, 100 * ONE)
        seen.append(int(cur[0]))
    assert seen == [5, 5, 5, 10]


class _FixedMetric:
    """A policy whose metric (AverageValue target 1) is what the test sets for the step."""

    def __init__(self):
        self.total = 0.0

    def metric(self, ctx):
        return np.array([self.total]), ONE, None

    def replica_bounds(self, ctx):
        return ONE.astype(int), 100 * ONE.astype(int)


def _pending_only(replicas: int, step_s: float):
    """A context whose workload's replicas are all still unbound (so a scale-down just unqueues them)."""
    st = SimpleNamespace(ready=np.zeros((1, 1), int), booting=np.zeros((1, 1), int), pending=np.array([replicas]))
    return SimpleNamespace(st=st, timing=ControlTiming(), now_s=0.0, inputs=SimpleNamespace(step_s=step_s))


def test_a_60_s_step_runs_its_four_hpa_syncs_so_scale_up_compounds():
    policy, ctx = _FixedMetric(), _pending_only(1, 60.0)
    policy.total = 40.0
    done = _hpa_syncs(ctx, policy, Hpa(1, ctx.timing), 0, 60.0)
    assert done == 4
    assert ctx.st.pending[0] == 40            # 1 -> 5 -> 10 -> 20 -> 40, as in one real minute


def test_at_60_s_steps_scale_down_waits_300_seconds_not_300_syncs_worth_of_steps():
    policy, ctx = _FixedMetric(), _pending_only(10, 60.0)
    hpa, done = Hpa(1, ctx.timing), 0
    policy.total = 10.0
    done = _hpa_syncs(ctx, policy, hpa, done, 60.0)
    policy.total = 2.0
    step_s = 60.0
    while ctx.st.pending[0] == 10 and step_s < 3600:
        done = _hpa_syncs(ctx, policy, hpa, done, step_s + 60.0)
        step_s += 60.0
    assert step_s - 60.0 == 300.0          # the step holding the sync at 345 s, 300 s after the last 10
    assert ctx.st.pending[0] == 2
