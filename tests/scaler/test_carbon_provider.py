"""Carbon intensity from a provider (`--carbon-static`, `--carbon-config`) reaches the plan: the
predicted carbon the scaler exports follows the provider's value, through a real gRPC channel
and the /metrics endpoint; a reading the provider could not refresh ("stale", "default") is
planned with and reported as degraded."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.scaler.helpers import SettableDemand, keda_poll, ref, scrape, snapshot, start_live, stub_for
from wattwise.models.snapshot import DEFAULT_CARBON_G_PER_KWH
from wattwise.scaler.carbon import carbon_source, static_settings
from wattwise.scaler.sources import ScenarioCarbon
from wattwise.telemetry.carbon.errors import CarbonSettingsError
from wattwise.telemetry.carbon.factory import build_carbon_source

GB_TRACE = Path(__file__).resolve().parents[2] / "data" / "carbon" / "GB_2023-06.csv"
ZONES = sorted({n.zone for n in snapshot().nodes})
QUERY = 'sum(streams{w="hall"})'
SO = ref("hall", "shop", workload="hall-cams", query=QUERY, fpsPerStream="15")


class Clock:
    def __init__(self, now_s):
        self.now_s = now_s

    def __call__(self):
        return self.now_s


def _utc_s(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc).timestamp()


def _gb_lca(at_s: float) -> float:
    """The GB trace's LCA value for the hour holding `at_s`, read independently of the provider."""
    with GB_TRACE.open(newline="") as f:
        for row in csv.DictReader(f):
            if _utc_s(row["Datetime (UTC)"]) <= at_s < _utc_s(row["Datetime (UTC)"]) + 3600:
                return float(row["Carbon Intensity gCO₂eq/kWh (LCA)"])
    raise AssertionError("hour not in the trace")


def _figures(scaler):
    m = scrape(scaler)
    key = (("workload", "shop/hall-cams"),)
    return {"power_w": m[("wattwise_predicted_cluster_power_watts", ())],
            "carbon_g_per_h": m[("wattwise_predicted_cluster_carbon_grams_per_hour", ())],
            "w_power_w": m[("wattwise_predicted_power_watts", key)],
            "w_carbon_g_per_h": m[("wattwise_predicted_carbon_grams_per_hour", key)],
            "degraded": m[("wattwise_degraded", ())]}


def _poll_and_figures(scaler, stub):
    stub.GetMetricSpec(SO, timeout=5)                       # registers the ScaledObject
    state = scaler.scaler.refresher.refresh_once()
    _, metrics, active = keda_poll(stub, SO)
    assert active.result and metrics.metricValues[0].metricValueFloat > 0
    return state, _figures(scaler)


def _assert_carbon_follows(fig, g_per_kwh):
    """All zones at one intensity: grams per hour = watts x g/kWh / 1000, cluster and workload."""
    assert fig["w_power_w"] > 0
    assert fig["carbon_g_per_h"] == pytest.approx(fig["power_w"] * g_per_kwh / 1000.0, rel=1e-9)
    assert fig["w_carbon_g_per_h"] == pytest.approx(fig["w_power_w"] * g_per_kwh / 1000.0, rel=1e-9)


@pytest.mark.parametrize("g_per_kwh", [50.0, 700.0])
def test_static_provider_sets_the_plans_carbon(g_per_kwh):
    source = build_carbon_source(static_settings(g_per_kwh, ZONES))      # what --carbon-static builds
    scaler = start_live(SettableDemand({QUERY: 20}), start_refresher=False, carbon=source)
    channel, stub = stub_for(scaler.grpc_port)
    try:
        state, fig = _poll_and_figures(scaler, stub)
        assert not state.degraded, state.degraded_reasons
        assert fig["degraded"] == 0
        _assert_carbon_follows(fig, g_per_kwh)
        assert {r.g_per_kwh for r in state.default_view.snapshot.carbon.values()} == {g_per_kwh}
    finally:
        channel.close()
        scaler.stop(1.0)
        source.close()


def test_csv_provider_follows_the_trace_hour_by_hour_and_reports_a_stale_value():
    """Hours apart, so the re-plan gate's max-interval re-plans (the scenario's objective is energy,
    whose cost weights carbon never moves)."""
    source = build_carbon_source({"provider": "csv", "paths": {zone: str(GB_TRACE) for zone in ZONES}})
    night = _utc_s("2023-06-10 03:00:00") + 7.0                       # plan time = 03:00:00 (15 s grid)
    noon = _utc_s("2023-06-10 12:00:00") + 7.0
    assert _gb_lca(noon) != _gb_lca(night)
    clock = Clock(night)
    scaler = start_live(SettableDemand({QUERY: 20}), clock=clock, start_refresher=False, interval_s=15.0,
                        carbon=source, registry_ttl_s=1e9)
    channel, stub = stub_for(scaler.grpc_port)
    try:
        for at_s in (night, noon):
            clock.now_s = at_s
            state, fig = _poll_and_figures(scaler, stub)
            assert not state.degraded, state.degraded_reasons
            _assert_carbon_follows(fig, _gb_lca(at_s))

        clock.now_s = _utc_s("2024-01-10 12:00:00")                     # outside the trace: no new value
        state, fig = _poll_and_figures(scaler, stub)                    # planned all the same...
        assert state.degraded and fig["degraded"] == 1                  # ...and reported
        reasons = " ".join(state.degraded_reasons)
        for zone in ZONES:
            assert f"carbon intensity for {zone} is stale" in reasons
        assert "outside the" in reasons
        assert {r.status for r in state.default_view.snapshot.carbon.values()} == {"stale"}
        # a stale value is counted at no less than the conservative default (missing carbon is not free)
        _assert_carbon_follows(fig, max(_gb_lca(noon), DEFAULT_CARBON_G_PER_KWH))
    finally:
        channel.close()
        scaler.stop(1.0)
        source.close()


def test_a_zone_without_a_value_is_planned_with_the_default_and_reported():
    source = build_carbon_source({"provider": "static", "g_per_kwh": {ZONES[0]: 100.0},
                                  "default_g_per_kwh": 450.0})
    scaler = start_live(SettableDemand({QUERY: 20}), start_refresher=False, carbon=source)
    channel, stub = stub_for(scaler.grpc_port)
    try:
        state, fig = _poll_and_figures(scaler, stub)
        assert fig["degraded"] == 1
        reasons = " ".join(state.default_view.degraded_reasons)
        assert f"carbon intensity for {ZONES[0]}" not in reasons
        for zone in ZONES[1:]:
            assert f"carbon intensity for {zone} is default" in reasons
        assert state.default_view.snapshot.carbon[ZONES[1]].g_per_kwh == 450.0
    finally:
        channel.close()
        scaler.stop(1.0)
        source.close()


# -- the flags ------------------------------------------------------------------------------------

def test_config_file_yaml_and_json_and_static_flag(tmp_path):
    snap = snapshot()
    yaml_file = tmp_path / "carbon.yaml"
    yaml_file.write_text(f"provider: static\ng_per_kwh:\n  {ZONES[0]}: 123\n")
    json_file = tmp_path / "carbon.json"
    json_file.write_text(json.dumps({"provider": "static", "g_per_kwh": {ZONES[0]: 321}}))
    for path, expected in ((yaml_file, 123.0), (json_file, 321.0)):
        source = carbon_source(snap, config=str(path))
        reading = source.intensity(ZONES[0], 0.0)
        assert (reading.g_per_kwh, reading.status) == (expected, "fresh")
        source.close()
    source = carbon_source(snap, static_g_per_kwh=42.0)
    assert [source.intensity(z, 0.0).g_per_kwh for z in ZONES] == [42.0] * len(ZONES)
    assert all(source.intensity(z, 0.0).trustworthy for z in ZONES)
    source.close()
    assert isinstance(carbon_source(snap), ScenarioCarbon)


def test_bad_carbon_flags_are_explained(tmp_path):
    snap = snapshot()
    bad_key = tmp_path / "bad.yaml"
    bad_key.write_text("provider: electricitymaps\nauth_token: x\ntoken_ttl: 3\n")
    with pytest.raises(CarbonSettingsError, match="carbon.token_ttl"):
        carbon_source(snap, config=str(bad_key))
    not_mapping = tmp_path / "list.yaml"
    not_mapping.write_text("- provider: static\n")
    with pytest.raises(ValueError, match="expected a mapping"):
        carbon_source(snap, config=str(not_mapping))
    with pytest.raises(ValueError, match="cannot read"):
        carbon_source(snap, config=str(tmp_path / "missing.yaml"))
    with pytest.raises(ValueError, match="not both"):
        carbon_source(snap, config=str(bad_key), static_g_per_kwh=10.0)
    with pytest.raises(CarbonSettingsError, match="g_per_kwh"):
        carbon_source(snap, static_g_per_kwh=-1.0)


def test_serve_accepts_the_carbon_flags():
    from wattwise.cli import build_parser

    parser, _ = build_parser("serve")
    args = parser.parse_args(["serve", "--scaler", "--carbon-static", "120", "--plan-inline"])
    assert (args.carbon_static, args.carbon_config, args.plan_inline) == (120.0, None, True)
    args = parser.parse_args(["serve", "--scaler", "--carbon-config", "c.yaml"])
    assert (args.carbon_static, args.carbon_config, args.plan_inline) == (None, "c.yaml", False)


class _FailingCarbon:
    """Fresh readings until `failing`; then raises for every zone (a provider without a cache)."""

    def __init__(self, values):
        self.values = values
        self.failing = False

    def intensity(self, zone, now_s):
        if self.failing or zone not in self.values:
            raise ConnectionError(f"provider down for {zone}")
        from wattwise.models.ports import CarbonReading

        return CarbonReading(zone=zone, g_per_kwh=self.values[zone], at_s=now_s, source="test")


def test_a_failing_source_is_counted_at_no_less_than_the_default():
    from wattwise.models.costs import zone_intensity

    source = _FailingCarbon({ZONES[0]: 50.0})                   # the other zones were never read
    scaler = start_live(SettableDemand({QUERY: 20}), start_refresher=False, carbon=source)
    channel, stub = stub_for(scaler.grpc_port)
    try:
        state, _ = _poll_and_figures(scaler, stub)
        snap = state.default_view.snapshot
        assert zone_intensity(snap, ZONES[0]) == 50.0
        for zone in ZONES[1:]:
            assert zone not in snap.carbon and zone_intensity(snap, zone) == DEFAULT_CARBON_G_PER_KWH
            assert (f"carbon intensity for {zone} unavailable (provider down for {zone}), counting the default "
                    f"{DEFAULT_CARBON_G_PER_KWH:g} g/kWh") in state.degraded_reasons
        source.failing = True
        state = scaler.scaler.refresher.refresh_once(force=True)
        snap = state.default_view.snapshot
        assert snap.carbon[ZONES[0]].status == "stale"          # the last value, no longer trusted
        assert zone_intensity(snap, ZONES[0]) == DEFAULT_CARBON_G_PER_KWH
    finally:
        channel.close()
        scaler.stop(1.0)


class _OldValueCarbon:
    """A provider answering, as fresh, a value from `age_s` before now (Electricity Maps' latest
    hours behind, or WattTime's lagging /v3/historical)."""

    def __init__(self, g_per_kwh, age_s):
        self.g_per_kwh, self.age_s = g_per_kwh, age_s

    def intensity(self, zone, now_s):
        from wattwise.models.ports import CarbonReading

        return CarbonReading(zone=zone, g_per_kwh=self.g_per_kwh, at_s=now_s - self.age_s, source="test")


def test_a_value_hours_old_is_reported_stale_and_counted_at_no_less_than_the_default():
    from wattwise.models.costs import zone_intensity

    for age_s, stale in ((1800.0, False), (9 * 3600.0, True)):
        scaler = start_live(SettableDemand({QUERY: 20}), start_refresher=False, carbon=_OldValueCarbon(40.0, age_s))
        channel, stub = stub_for(scaler.grpc_port)
        try:
            state, _ = _poll_and_figures(scaler, stub)
            snap = state.default_view.snapshot
            for zone in ZONES:
                assert (snap.carbon[zone].status == "stale") is stale, age_s
                assert zone_intensity(snap, zone) == (DEFAULT_CARBON_G_PER_KWH if stale else 40.0)
            reasons = " ".join(state.degraded_reasons)
            assert (f"carbon intensity for {ZONES[0]} is stale (its value is 9.0 h old (more than 2 h))"
                    in reasons) is stale, reasons
        finally:
            channel.close()
            scaler.stop(1.0)
