"""A scaler started fresh seeds each workload's pre-warming forecast with its last day of demand
from a real Prometheus (Debian's, loaded with promtool): yesterday's ramp is expected before it
comes as by a scaler that ran through the day; absurd points in the history are left out and said
once; Prometheus down at start costs one log line and an empty history, the answers unaffected."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import replace

import numpy as np
import pytest

from tests.faults.tcp_proxy import TcpProxy
from tests.prometheus_fixture import prometheus_or_fail
from tests.scaler.helpers import keda_poll, ref, start_live, stub_for
from wattwise.explain_cli import render
from wattwise.models.forecast import DAY_S, DemandForecaster
from wattwise.plan_report import plan_report
from wattwise.scaler.demand import PromQLDemand

QUERY = 'sum(wattwise_active_streams{namespace="retail",workload="checkout-cams"})'
KEY = "retail/checkout-cams"
STEP_S = 15
BIN_S = 900
RAMP = (int(time.time()) // BIN_S) * BIN_S - 3 * 3600      # a bin's start, 3 h ago: today's "now" is just before it
NOW = RAMP - STEP_S                                         # the lead (24 s) reaches into the ramp's bin
ABSURD = {NOW - 120: "1e12", NOW - 6 * 3600: "-5", NOW - 9 * 3600: "NaN"}   # above max_streams, negative, NaN


def streams(t: int) -> float:
    """10 to 14 streams (scrambled: misses the forecast cannot see teach it a margin), 40 for two
    hours from yesterday's ramp."""
    if RAMP - DAY_S <= t < RAMP - DAY_S + 2 * 3600:
        return 40.0
    return 10.0 + (t // STEP_S * 7919) % 5


def _openmetrics() -> str:
    lines = ["# TYPE wattwise_active_streams gauge"]
    for t in range(NOW - 26 * 3600, NOW + STEP_S, STEP_S):
        value = ABSURD.get(t, f"{streams(t):g}")
        lines.append(f'wattwise_active_streams{{namespace="retail",workload="checkout-cams",pod="gw-1"}} {value} {t}')
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def prom(tmp_path_factory):
    running = prometheus_or_fail(_openmetrics(), tmp_path_factory.mktemp("prom"))
    yield running
    running.stop()


def started(url: str, backfill_s: float = DAY_S, clock=lambda: NOW):
    """A scaler started at NOW (KEDA has not called yet), its refresher driven by the test."""
    demand = PromQLDemand(url, timeout_s=5.0, retries=0)
    scaler = start_live(demand, clock=clock, start_refresher=False, interval_s=STEP_S, registry_ttl_s=7 * DAY_S)
    refresher = scaler.scaler.refresher
    refresher.settings = replace(refresher.settings, forecast_backfill_s=backfill_s)
    return scaler, demand


def first_plan(url: str, backfill_s: float = DAY_S):
    """KEDA registers the workload; the refresh after it plans it: (its planned demand, the
    plan view's forecast history for it, GetMetrics' value, the plan view)."""
    scaler, demand = started(url, backfill_s)
    channel, stub = stub_for(scaler.grpc_port)
    so = ref("checkout", "retail", workload="checkout-cams", query=QUERY)
    try:
        stub.GetMetricSpec(so, timeout=5)
        view = scaler.scaler.refresher.refresh_once().default_view
        _, metrics, _ = keda_poll(stub, so)
        w = next(w for w in view.snapshot.workloads if w.key == KEY)
        return w.demand, view.inputs["forecast_history"][KEY], metrics.metricValues[0].metricValueFloat, view
    finally:
        channel.close()
        scaler.stop(1.0)
        demand.close()


def ran_through_the_day(lead_s: float, fps_per_stream: float) -> float:
    """What the forecaster of a scaler that refreshed every 15 s over the last day expects at NOW:
    fed what each refresh read (an absurd reading: unknown), as the refresher feeds it."""
    f = DemandForecaster([KEY], [lead_s])
    for t in range(NOW - int(DAY_S), NOW + STEP_S, STEP_S):
        f.add(float(t), [math.nan if t in ABSURD else streams(t) * fps_per_stream])
    return float(f.expected(float(NOW), [streams(NOW) * fps_per_stream])[0])


def test_a_fresh_scaler_expects_yesterdays_ramp_as_one_that_ran_through_the_day(prom):
    demand, history, _, _ = first_plan(prom.url)
    fps_per_stream = demand.total_fps / streams(NOW)
    want = ran_through_the_day(demand.lead_s, fps_per_stream)
    assert want > demand.total_fps + 20 * fps_per_stream       # the ramp (+28 streams), before it comes
    # The seasonal step and the trend are the same to rounding; the miss margin is worked out at the
    # first refresh here, at the bin's start there (once a bin, `DemandForecaster._margins`): the
    # 90th percentile of an hour of misses, 14.75 min apart, moves by well under a stream here (the
    # figures are equal on this data: 651 fps both).
    assert abs(demand.expected_fps - want) <= 0.5 * fps_per_stream, (demand.expected_fps, want)
    assert history["seeded_samples"] == 5760 - 3 and history["profile_bins"] == 96   # its first point: yesterday's
    assert history["backfill"]["from_s"] == NOW - DAY_S and history["backfill"]["to_s"] == NOW - STEP_S

    without, history_off, _, view = first_plan(prom.url, backfill_s=0)
    assert "learned live only" in render(plan_report(view), KEY)
    assert without.expected_fps < without.total_fps + fps_per_stream     # the trend and nothing else
    assert history_off["seeded_samples"] == 0 and history_off["backfill"] is None


def test_the_plan_view_says_how_much_history_each_forecaster_has_and_where_it_came_from(prom):
    *_, view = first_plan(prom.url)
    doc = plan_report(view)
    (entry,) = [w for w in doc["workloads"] if w["key"] == KEY]
    history = entry["forecast_history"]
    assert (history["profile_h"], history["seeded_samples"]) == (24.0, 5757)
    assert history["seeded_to"].endswith("Z") and history["backfill"]["skipped"] == 3
    assert doc["inputs"]["settings"]["forecast_backfill_s"] == DAY_S
    text = render(doc, KEY)
    assert "24.0 h of the daily profile learned (96/96 bins); seeded with 5757 points from " in text
    assert "(3 implausible left out)" in text


def test_absurd_points_in_the_history_are_left_out_and_said_once(prom, caplog):
    with caplog.at_level(logging.INFO, logger="wattwise.scaler.forecast_backfill"):
        demand, history, _, _ = first_plan(prom.url)
    backfill = history["backfill"]
    assert (backfill["skipped"], backfill["missing"], backfill["seeded"]) == (3, 0, 5757)
    assert "implausible value" in backfill["skipped_note"]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "3 implausible point(s) left out" in lines[0], lines
    # 1e12 streams two minutes ago, learned, would be a trend of billions of fps in the last 10 minutes
    assert demand.expected_fps < 100 * demand.total_fps


def test_prometheus_down_at_start_is_one_log_line_an_empty_history_and_the_same_answers(prom, caplog):
    """Down for the first refresh (each ScaledObject's first plan), back for the next: the scaler
    answers as one without backfill, learns from now, and does not try again."""
    proxy = TcpProxy(int(prom.url.rsplit(":", 1)[1]))            # not up yet: connections refused
    now = [float(NOW)]
    with_backfill, demand_a = started(proxy.url, clock=lambda: now[0])
    without, demand_b = started(proxy.url, backfill_s=0, clock=lambda: now[0])
    so = ref("checkout", "retail", workload="checkout-cams", query=QUERY)
    stubs = [stub_for(s.grpc_port) for s in (with_backfill, without)]
    try:
        for scaler, (_, stub) in zip((with_backfill, without), stubs):
            stub.GetMetricSpec(so, timeout=5)
            with caplog.at_level(logging.INFO, logger="wattwise.scaler.forecast_backfill"):
                scaler.scaler.refresher.refresh_once()
        proxy.up()
        answers = []
        for _ in range(3):
            now[0] += STEP_S
            with caplog.at_level(logging.INFO, logger="wattwise.scaler.forecast_backfill"):
                views = [s.scaler.refresher.refresh_once().default_view for s in (with_backfill, without)]
            answers.append([(m.metricValues[0].metricValueFloat, a.result)
                            for _, m, a in (keda_poll(stub, so) for _, stub in stubs)])
        lines = [r for r in caplog.records if r.name == "wattwise.scaler.forecast_backfill"]
        assert len(lines) == 1 and lines[0].levelno == logging.WARNING, [r.getMessage() for r in lines]
        assert "learn from now" in lines[0].getMessage() and "unreachable" in lines[0].getMessage()
        history = views[0].inputs["forecast_history"][KEY]
        assert history["seeded_samples"] == 0 and "unreachable" in history["backfill"]["error"]
        assert all(a[0] == a[1] and a[0][1] for a in answers), answers
        assert [w.demand for w in views[0].snapshot.workloads] == [w.demand for w in views[1].snapshot.workloads]
    finally:
        for channel, _ in stubs:
            channel.close()
        for scaler, demand in ((with_backfill, demand_a), (without, demand_b)):
            scaler.stop(1.0)
            demand.close()
        proxy.down()


def test_the_range_read_sums_series_per_step_and_says_which_steps_had_none(prom):
    demand = PromQLDemand(prom.url)
    try:
        history = demand.read_range(QUERY, NOW - 26 * 3600 - 600, NOW - 26 * 3600 + 60, STEP_S)
    finally:
        demand.close()
    assert history.ok and len(history.times_s) == 45
    assert not history.present[:40].any() and np.isnan(history.values[:40]).all()   # before the data starts
    assert history.present[40:].all()
    assert list(history.values[40:]) == [streams(int(t)) for t in history.times_s[40:]]


def test_workloads_past_the_refresh_s_time_budget_start_empty_and_are_said_to(prom, caplog):
    """Two ScaledObjects with queries of their own; the first read takes the whole budget (a clock
    that moves 20 s a look once the first read starts): the second is not asked, learns from now,
    and the log says so."""
    import itertools

    from wattwise.models.trigger_metadata import parse_metadata
    from wattwise.scaler.forecast_backfill import ForecastBackfill

    requests = [parse_metadata(name, "retail", {"workload": name, "query": f"{QUERY} + {k}"})
                for k, name in enumerate(("first", "second"))]
    ticks = itertools.chain([0, 0], itertools.count(20, 20))     # the deadline set, the first look
    seeded: dict[str, np.ndarray] = {}
    demand = PromQLDemand(prom.url)
    backfill = ForecastBackfill(demand, DAY_S, budget_s=10.0, clock=lambda: float(next(ticks)))
    try:
        with caplog.at_level(logging.INFO, logger="wattwise.scaler.forecast_backfill"):
            backfill.run(requests, float(NOW), STEP_S, lambda r, reading: reading, lambda r, v: v,
                         lambda key, t, fps: seeded.__setitem__(key, fps))
    finally:
        demand.close()
    assert list(seeded) == ["retail/first"] and backfill.done["retail/first"].seeded == 5759   # all but the NaN
    assert "10 s for backfill ran out" in backfill.done["retail/second"].error
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "retail/second" in warnings[0]


def test_a_backfill_that_breaks_for_one_workload_fails_that_one_alone(prom, caplog):
    """Whatever goes wrong seeding one workload (here the core refuses it) is its failure, said
    once; the others are seeded, and the refresh, which plans next, goes on."""
    from wattwise.models.trigger_metadata import parse_metadata
    from wattwise.scaler.forecast_backfill import ForecastBackfill

    requests = [parse_metadata(name, "retail", {"workload": name, "query": QUERY}) for name in ("bad", "good")]
    seeded = []

    def seed(key, times_s, fps):
        if key == "retail/bad":
            raise ValueError("refused")
        seeded.append(key)

    demand = PromQLDemand(prom.url)
    backfill = ForecastBackfill(demand, 3600.0, budget_s=10.0)
    try:
        with caplog.at_level(logging.INFO, logger="wattwise.scaler.forecast_backfill"):
            backfill.run(requests, float(NOW), STEP_S, lambda r, reading: reading, lambda r, v: v, seed)
    finally:
        demand.close()
    assert seeded == ["retail/good"] and backfill.done["retail/bad"].error == "ValueError: refused"
    assert [r.levelno for r in caplog.records] == [logging.INFO, logging.WARNING]
