"""Settings -> carbon source: every provider, and errors that name the bad key."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from carbon_fakes import FakeApi, Reply  # noqa: E402

from wattwise.models.ports import CarbonIntensitySource  # noqa: E402
from wattwise.telemetry.carbon.cached import CachedCarbonSource  # noqa: E402
from wattwise.telemetry.carbon.csv_provider import CsvTraceProvider  # noqa: E402
from wattwise.telemetry.carbon.electricitymaps import ElectricityMapsProvider  # noqa: E402
from wattwise.telemetry.carbon.errors import CarbonSettingsError  # noqa: E402
from wattwise.telemetry.carbon.factory import build_carbon_source, parse_carbon_settings  # noqa: E402
from wattwise.telemetry.carbon.gsf import CarbonAwareSdkProvider  # noqa: E402
from wattwise.telemetry.carbon.prometheus import PrometheusCarbonProvider  # noqa: E402
from wattwise.telemetry.carbon.static import StaticCarbonProvider  # noqa: E402
from wattwise.telemetry.carbon.uk import UkCarbonIntensityProvider  # noqa: E402
from wattwise.telemetry.carbon.watttime import WattTimeProvider  # noqa: E402

DE = Path("/work/shared/data/carbon/DE-LU_2023_hourly.csv")
NOW_S = 1_700_000_000.0


@pytest.mark.parametrize("settings, kind", [
    ({"provider": "electricitymaps", "auth_token": "t"}, ElectricityMapsProvider),
    ({"provider": "watttime", "username": "u", "password": "p", "signal_type": "co2_aoer"},
     WattTimeProvider),
    ({"provider": "uk"}, UkCarbonIntensityProvider),
    ({"provider": "gsf", "base_url": "http://127.0.0.1:1"}, CarbonAwareSdkProvider),
    ({"provider": "prometheus", "base_url": "http://127.0.0.1:1", "query": "carbon"},
     PrometheusCarbonProvider),
    ({"provider": "static", "g_per_kwh": {"DE": 380}}, StaticCarbonProvider),
])
def test_each_provider_is_built_behind_the_cache(settings, kind):
    source = build_carbon_source(settings)
    try:
        assert isinstance(source, CachedCarbonSource) and isinstance(source, CarbonIntensitySource)
        assert isinstance(source.provider, kind)
    finally:
        source.close()


def test_common_keys_reach_the_cache():
    source = build_carbon_source({"provider": "uk", "ttl_s": 60, "default_g_per_kwh": 450,
                                  "refresh_timeout_s": 0.5, "max_stale_s": 120})
    try:
        assert (source.ttl_s, source.default_g_per_kwh, source.refresh_timeout_s, source.max_stale_s) == (
            60, 450, 0.5, 120)
    finally:
        source.close()


def test_secrets_stay_out_of_reprs():
    settings = parse_carbon_settings({"provider": "watttime", "username": "u", "password": "hunter2"})
    assert "hunter2" not in repr(settings)


@pytest.mark.parametrize("settings, where, words", [
    ({"provider": "uk", "ttl": 5}, "carbon.ttl", ["unknown key", "ttl_s"]),
    ({"provider": "electricitymaps"}, "carbon.auth_token", ["missing"]),
    ({"provider": "wattime"}, "carbon.provider", ["unknown provider 'wattime'", "watttime"]),
    ({"zone": "DE"}, "carbon.provider", ["missing"]),
    ({"provider": "static", "ttl_s": -1}, "carbon.ttl_s", ["greater than or equal to 0"]),
    ({"provider": "watttime", "username": "u", "password": "p", "signal_type": "health_damage"},
     "carbon.signal_type", ["co2_moer"]),
    ({"provider": "csv", "paths": {"DE": "/nonexistent.csv"}}, "carbon.paths", ["nonexistent"]),
])
def test_bad_settings_name_the_key(settings, where, words):
    with pytest.raises(CarbonSettingsError) as caught:
        build_carbon_source(settings)
    text = str(caught.value)
    assert caught.value.path == where and text.startswith(where)
    for word in words:
        assert word in text


def test_uk_end_to_end_through_the_factory():
    body = {"data": [{"from": "2023-11-14T22:00Z", "to": "2023-11-14T22:30Z",
                      "intensity": {"forecast": 128, "actual": 121, "index": "moderate"}}]}
    clock_s = [NOW_S]
    with FakeApi() as api:
        api.on("/intensity", Reply(body=body), Reply(500, {"error": {"code": "500", "message": "down"}}))
        source = build_carbon_source({"provider": "uk", "base_url": api.url, "with_forecast": False,
                                      "ttl_s": 60, "failure_backoff_s": 0}, clock=lambda: clock_s[0])
        try:
            assert source.intensity("GB", NOW_S).g_per_kwh == 121.0
            clock_s[0] += 61
            stale = source.intensity("GB", clock_s[0])
            assert (stale.status, stale.age_s) == ("stale", 61.0) and "down" in stale.error
            other = source.intensity("DE", clock_s[0])
            assert other.status == "default" and "only serves zone 'GB'" in other.error
        finally:
            source.close()


@pytest.mark.skipif(not DE.exists(), reason="shared carbon data not mounted")
def test_csv_through_the_factory_follows_now_s():
    source = build_carbon_source({"provider": "csv", "paths": {"DE": str(DE)}, "column": "direct"})
    try:
        assert isinstance(source.provider, CsvTraceProvider)
        jan1_s = 1_672_531_200.0
        assert source.intensity("DE", jan1_s).g_per_kwh == 140.51
        assert source.intensity("DE", jan1_s + 3600).g_per_kwh == 140.44  # ttl_s 0: no stale hour
    finally:
        source.close()
