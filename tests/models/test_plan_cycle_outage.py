"""The plan loop (`PlanCycle`) across a demand-telemetry outage longer than the scale-down window:
held at the last trustworthy plan meanwhile, and after it, replicas come down only once demand has
stayed low for the window, not on the first reading (often a partial rate after a gap)."""

from tests.models.builders import cycle_replicas, node, node_class
from wattwise.models.plan_cycle import CycleSettings, PlanCycle
from wattwise.models.workload import Demand

C = node_class("amx", amx=True, cores=64)
NODES = [node(f"n{i}", C) for i in range(4)]


def run(steps):
    """(t_s, fps or None for untrusted) -> replicas planned after each step."""
    return cycle_replicas(PlanCycle(CycleSettings()), steps, C, NODES)


def test_after_an_outage_longer_than_the_window_replicas_wait_the_window_to_come_down():
    window_s = CycleSettings().planner.scale_down_window_s
    steps = [(15.0 * i, 800.0) for i in range(10)]                     # 800 fps
    steps += [(150.0 + 15.0 * i, None) for i in range(40)]             # a 10-minute outage (> 300 s)
    recovered_s = 150.0 + 15.0 * 40
    steps += [(recovered_s + 15.0 * i, 40.0) for i in range(int(window_s // 15) + 6)]   # low from then on
    out = dict(run(steps))
    full = out[135.0]
    assert full > 10
    assert out[recovered_s - 15.0] == full                              # held through the outage
    assert all(out[t] == full for t in out if recovered_s <= t < recovered_s + window_s - 15.0)
    assert out[max(out)] < full                                         # and down once the window has passed


def test_demand_the_core_is_told_to_trust_must_be_a_number():
    import math

    import pytest

    from wattwise.models.errors import InvalidInputError
    from wattwise.models.snapshot import PlannerSettings

    for bad in (math.nan, -5.0, math.inf):
        with pytest.raises(InvalidInputError, match="demand.total_fps: .* is not a number of at least 0"):
            Demand(total_fps=bad)                       # nan read as 0 fps, inf crashed the planner
        with pytest.raises(InvalidInputError, match="demand.streams"):
            Demand(streams=bad)
    assert not Demand(total_fps=math.nan, trustworthy=False).trustworthy   # an untrusted one is held, not judged
    for name in ("scale_down_window_s", "amortise_s", "unmet_penalty_margin"):
        with pytest.raises(InvalidInputError, match=f"settings.{name}: must be a finite number"):
            PlannerSettings(**{name: math.nan})         # nan disabled the scale-down window silently
