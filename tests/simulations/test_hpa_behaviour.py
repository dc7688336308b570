"""The simulated HPA behind the `wattwise` policy is configured as deploy/examples' ScaledObjects
configure it: no scale-down stabilisation of its own (the planner already holds each workload's
peak over its scale-down window); every other policy keeps the HPA's default 300 s."""

import numpy as np
import yaml

from wattwise.simulations.hpa import Hpa
from wattwise.simulations.policies.keda_tuned import KedaTunedPolicy
from wattwise.simulations.policies.wattwise_policy import SHIPPED_HPA_SCALE_DOWN_WINDOW_S, WattwisePolicy
from wattwise.simulations.timing import ControlTiming

from .conftest import REPO


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
    one = np.ones(1)
    for window_s, after_drop in ((300.0, 10), (0.0, 6)):
        hpa = Hpa(1, ControlTiming(hpa_scale_down_window_s=window_s))
        assert hpa.desired(np.array([10]), np.array([10.0]), one, one, 100 * one)[0] == 10
        assert hpa.desired(np.array([10]), np.array([6.0]), one, one, 100 * one)[0] == after_drop
    assert timing.hpa_scale_down_window_s == 300.0
