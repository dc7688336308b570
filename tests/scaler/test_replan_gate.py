"""The refresher re-plans through the core's gate (`models.replan.needs_replan`, the simulator's
too), in seconds of the injected clock: it skips the planner when the gate says no, and re-plans
when a ScaledObject registers, demand moves beyond tolerance (up at once, down once the
scale-down window has passed), carbon moves a zone's cost weight, demand stops or starts being
trustworthy, pods wait, or the plan reaches its maximum age. Answers go through a real channel."""

from __future__ import annotations

from dataclasses import replace

import pytest

from wattwise.models.forecast import ForecastSettings
from wattwise.models.ports import CarbonReading
from wattwise.models.replan import ReplanSettings
from wattwise.scaler.planning import InlinePlanner
from wattwise.scaler.pod_counts import StaticPodCounts

from tests.scaler.helpers import SettableDemand, keda_poll, ref, snapshot, start_live, stub_for

QUERY = 'sum(streams{w="gate"})'
KEY = "shop/gate-cams"
T0 = 1_700_000_000.0          # on the 15 s grid
GATE = ReplanSettings()       # the defaults: 30 s min, 1800 s max, 5% demand, 5% carbon


class Clock:
    def __init__(self, now_s):
        self.now_s = now_s

    def __call__(self):
        return self.now_s


class CountingPlanner(InlinePlanner):
    def __init__(self):
        self.calls = 0

    def run(self, snapshots):
        self.calls += 1
        return super().run(snapshots)


class SettableCarbon:
    """Fresh readings per zone, as a test sets them."""

    def __init__(self, values):
        self.values = dict(values)

    def intensity(self, zone, now_s):
        return CarbonReading(zone=zone, g_per_kwh=self.values[zone], at_s=now_s, source="test")


def _setup(objective="carbon", pods=None):
    clock = Clock(T0)
    demand = SettableDemand({QUERY: 20})
    carbon = SettableCarbon({r.zone: r.g_per_kwh for r in snapshot().carbon.values()})
    planner = CountingPlanner()
    # The gate alone: with pre-warming on, a +2% step is a rising trend projected over a TEE node's
    # and replica's start-up, which re-plans as it should (tests/models/test_forecast.py).
    scaler = start_live(demand, clock=clock, start_refresher=False, interval_s=15.0, registry_ttl_s=1e9,
                        carbon=carbon, planner=planner, pods=pods, forecast=ForecastSettings(enabled=False))
    channel, stub = stub_for(scaler.grpc_port)
    so = ref("gate", "shop", workload="gate-cams", query=QUERY, objective=objective)
    stub.GetMetricSpec(so, timeout=5)
    return clock, demand, carbon, planner, scaler, channel, stub, so


def _step(scaler, clock, dt_s):
    """Advance the clock and refresh: (re-planned?, reason)."""
    clock.now_s += dt_s
    scaler.scaler.refresher.refresh_once()
    return scaler.scaler.refresher.last_decision


def _answer(stub, so):
    return keda_poll(stub, so)[1].metricValues[0].metricValueFloat


def test_skips_when_the_gate_says_no_and_replans_on_each_of_its_reasons():
    clock, demand, carbon, planner, scaler, channel, stub, so = _setup()
    refresher = scaler.scaler.refresher
    try:
        assert _step(scaler, clock, 0) == (True, "objectives-changed")      # registered (and with it the
                                                                            # carbon objective): planned at once
        planned_at, calls, first = refresher.state().now_s, planner.calls, _answer(stub, so)
        assert first > 0

        # nothing moved: the planner is not called, the plans (and their time) stay
        assert _step(scaler, clock, 15) == (False, "too soon")
        assert _step(scaler, clock, 30) == (False, "unchanged")
        demand.set(QUERY, 20.4)                                             # +2%: within tolerance
        assert _step(scaler, clock, 30) == (False, "unchanged")
        assert planner.calls == calls and refresher.state().now_s == planned_at
        assert _answer(stub, so) == first

        # demand up beyond tolerance: at once
        demand.set(QUERY, 40)
        assert _step(scaler, clock, 30) == (True, "demand-up")
        assert planner.calls == calls + 1
        busy = _answer(stub, so)
        assert busy > first

        # demand down: the window's peak holds it for the planner's scale-down window, then it goes
        demand.set(QUERY, 10)
        window_s = refresher.settings.planner.scale_down_window_s
        assert _step(scaler, clock, 30) == (False, "unchanged")
        assert _step(scaler, clock, window_s - 45) == (False, "unchanged")  # the 40 is still in the window
        assert _step(scaler, clock, 30) == (True, "demand-down")
        assert 0 < _answer(stub, so) < busy

        # carbon moves a zone's cost weight under the carbon objective
        zone = sorted(carbon.values)[0]
        carbon.values[zone] *= 1.02                                         # 2%: below the gate's 5%
        assert _step(scaler, clock, 60) == (False, "unchanged")
        carbon.values[zone] *= 1.5
        assert _step(scaler, clock, 60) == (True, "carbon")

        # demand stops being trustworthy: re-planned at once, held, answered
        held_at = _answer(stub, so)
        demand.set(QUERY, None)
        assert _step(scaler, clock, 15) == (True, "trust-changed")
        assert refresher.state().degraded
        wp = refresher.current().plan.workloads[KEY]
        assert wp.held and _answer(stub, so) == held_at
        assert _step(scaler, clock, 60) == (False, "unchanged")            # still no data: nothing to re-plan
        demand.set(QUERY, 10)
        assert _step(scaler, clock, 15) == (True, "trust-changed")
        assert not refresher.state().degraded

        # never kept longer than the gate's maximum interval
        assert _step(scaler, clock, GATE.max_interval_s) == (True, "max-interval")
        assert dict(refresher.replan_reasons) == {"first plan": 1, "objectives-changed": 1, "demand-up": 1,
                                                  "demand-down": 1, "carbon": 1, "trust-changed": 2,
                                                  "max-interval": 1}
        assert planner.calls == refresher.replans
    finally:
        channel.close()
        scaler.stop(1.0)


def test_energy_objective_ignores_carbon_moves():
    clock, demand, carbon, planner, scaler, channel, stub, so = _setup(objective="energy")
    try:
        assert _step(scaler, clock, 0) == (True, "workloads-changed")
        for zone in carbon.values:
            carbon.values[zone] *= 3.0
        assert _step(scaler, clock, 60) == (False, "unchanged")
    finally:
        channel.close()
        scaler.stop(1.0)


def test_replans_when_planned_pods_wait():
    pods = StaticPodCounts()
    clock, demand, carbon, planner, scaler, channel, stub, so = _setup(pods=pods)
    refresher = scaler.scaler.refresher
    try:
        _step(scaler, clock, 0)
        wp = refresher.current().plan.workloads[KEY]
        node = next(iter(wp.by_node))
        pods.set(KEY, {node: wp.replicas}, {node: wp.replicas})            # all bound: nobody waits
        assert _step(scaler, clock, 60) == (False, "unchanged")
        pods.set(KEY, {node: wp.replicas - 1}, {node: wp.replicas - 1})    # one fewer, none waiting (HPA tolerance)
        assert _step(scaler, clock, 15) == (False, "unchanged")
        assert _step(scaler, clock, refresher.settings.pending_after_s + 15) == (False, "unchanged")
        pods.set(KEY, {node: wp.replicas - 1}, {node: wp.replicas - 1}, unbound=1)   # one the scheduler cannot place
        assert _step(scaler, clock, 15) == (False, "unchanged")            # just seen: may be binding
        assert _step(scaler, clock, refresher.settings.pending_after_s - 15) == (False, "unchanged")
        assert _step(scaler, clock, 15) == (True, "pending")
        assert _step(scaler, clock, 30) == (False, "unchanged")            # waits again before the next try
    finally:
        channel.close()
        scaler.stop(1.0)


def test_a_plan_that_failed_to_publish_is_made_again():
    """A refresh that fails after planning (here the refit report, read for the plan view) counts
    as no plan: the next refresh plans again ("retry") instead of judging against a plan nobody
    was served."""
    clock, demand, carbon, planner, scaler, channel, stub, so = _setup()
    refresher = scaler.scaler.refresher
    calls = []

    def report_fails_once():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("refit report failed once")
        return None

    refresher.refit_report = report_fails_once
    try:
        version, replans = refresher.state().version, refresher.replans   # the plan made before registering
        with pytest.raises(RuntimeError, match="failed once"):
            refresher.refresh_once()
        assert refresher.state().version == version and KEY not in refresher.current().plan.workloads
        assert _step(scaler, clock, 15) == (True, "retry")
        assert KEY in refresher.current().plan.workloads and refresher.replans == replans + 1
    finally:
        channel.close()
        scaler.stop(1.0)


def test_new_settings_reach_the_plan_loop():
    clock, demand, carbon, planner, scaler, channel, stub, so = _setup()
    refresher = scaler.scaler.refresher
    try:
        _step(scaler, clock, 0)
        assert refresher.current().snapshot.settings.time_budget_s != 60.0
        refresher.settings = replace(refresher.settings, planner=replace(refresher.settings.planner,
                                                                         time_budget_s=60.0))
        refresher.refresh_once(force=True)
        assert refresher.current().snapshot.settings.time_budget_s == 60.0
    finally:
        channel.close()
        scaler.stop(1.0)
