"""`serve --scale-down-window`, `--replan-min-interval` and `--forecast-backfill`: the plan clock's settings, checked
before anything starts (one line, exit 2, as the other duration flags), plumbed into the
refresher (the planner's scale-down window, the re-plan gate's minimum interval) and shown in
GET /plan's `inputs.settings`. `--refresh-s` takes fractions of a second."""

from __future__ import annotations

import threading

import pytest

from wattwise import serve_cli
from wattwise.cli import build_parser, main
from wattwise.plan_report import plan_report

SCENARIO = "scenarios/metro-retail.yaml"
BASE = ["serve", "--scaler", "--scenario", SCENARIO, "--grpc-port", "0", "--health-port", "0"]


def ours() -> list[str]:
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("wattwise"))


@pytest.mark.parametrize("args, expected", [
    (["--scale-down-window", "5 minutes"], "--scale-down-window: '5 minutes' is not a duration"),
    (["--scale-down-window=-5m"], "--scale-down-window: '-5m' is not a duration"),
    (["--replan-min-interval", "soon"], "--replan-min-interval: 'soon' is not a duration"),
    (["--replan-min-interval", "2h"], "--replan-min-interval: 2h is longer than the 30m a plan is kept at most"),
    (["--forecast-backfill", "yesterday"], "--forecast-backfill: 'yesterday' is not a duration"),
    (["--refresh-s", "0"], "--refresh-s: 0.0 is not a positive number of seconds"),
    (["--refresh-s", "nan"], "--refresh-s: nan is not a positive number of seconds"),
])
def test_bad_values_are_one_line_before_anything_starts(capsys, args, expected):
    before = ours()
    rc = main([*BASE, *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith(f"wattwise serve: error: {expected}"), err[0]
    assert ours() == before


def built(*flags):
    parser, _ = build_parser("serve")
    args = parser.parse_args([*BASE, "--plan-inline", *flags])
    serve_cli.check_plan_clock(args)
    args.network = None
    args.prometheus_auth = None
    scaler, _ = serve_cli._build(args)
    return scaler


def test_defaults_are_today_s():
    scaler = built()
    try:
        s = scaler.refresher.settings
        assert (s.interval_s, s.planner.scale_down_window_s, s.replan.min_interval_s) == (15.0, 300.0, 30.0)
        assert s.forecast_backfill_s == 86400.0
    finally:
        scaler.refresher.stop()


def test_the_flags_reach_the_refresher_and_the_plan_view():
    scaler = built("--refresh-s", "0.25", "--scale-down-window", "520ms", "--replan-min-interval", "0.052s",
                   "--forecast-backfill", "6h")
    try:
        s = scaler.refresher.settings
        assert (s.interval_s, s.planner.scale_down_window_s, s.replan.min_interval_s) == (0.25, 0.52, 0.052)
        assert s.forecast_backfill_s == 6 * 3600.0
        view = scaler.refresher.state().default_view
        assert view.snapshot.settings.scale_down_window_s == 0.52     # what the planner sized with
        doc = plan_report(view)["inputs"]["settings"]
        assert doc == {"headroom": view.snapshot.settings.headroom, "scale_down_window_s": 0.52,
                       "refresh_s": 0.25, "replan_min_interval_s": 0.052, "forecast_backfill_s": 6 * 3600.0}
    finally:
        scaler.refresher.stop()


def test_zero_window_plans_for_the_demand_of_now_and_zero_backfill_is_off():
    scaler = built("--scale-down-window", "0", "--forecast-backfill", "0")
    try:
        assert scaler.refresher.settings.planner.scale_down_window_s == 0.0
        assert scaler.refresher.settings.forecast_backfill_s == 0.0
    finally:
        scaler.refresher.stop()
