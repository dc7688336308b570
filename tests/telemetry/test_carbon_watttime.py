"""WattTime v3 adapter: login, bearer token renewal on 401, lbs/MWh -> g/kWh, the first forecast
point as the current value (historical only as a fallback, as it may lag)."""

import base64
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from carbon_fakes import FakeApi, Reply, iso  # noqa: E402

from wattwise.telemetry.carbon.errors import CarbonProviderError  # noqa: E402
from wattwise.telemetry.carbon.watttime import WattTimeProvider  # noqa: E402

NOW_S = 1_700_000_000.0  # 2023-11-14T22:13:20Z
T0_S = 1_699_999_800.0  # 22:10:00Z, the last 5-minute point not in the future
LB_PER_MWH_TO_G_PER_KWH = 0.45359237


def meta(**extra):
    return {"region": "CAISO_NORTH", "signal_type": "co2_moer", "units": "lbs_co2_per_mwh",
            "data_point_period_seconds": 300, "model": {"date": "2023-03-01"}, "warnings": [],
            **extra}


HISTORICAL = {"data": [{"point_time": iso(T0_S - 300, "%Y-%m-%dT%H:%M:%S+00:00"), "value": 900.0},
                       {"point_time": iso(T0_S + 300, "%Y-%m-%dT%H:%M:%S+00:00"), "value": 1.0},
                       {"point_time": iso(T0_S, "%Y-%m-%dT%H:%M:%S+00:00"), "value": 1000.0}],
              "meta": meta()}
FORECAST = {"data": [{"point_time": iso(T0_S + 300, "%Y-%m-%dT%H:%M:%S+00:00"), "value": 800.0},
                     {"point_time": iso(T0_S + 600, "%Y-%m-%dT%H:%M:%S+00:00"), "value": 700.0}],
            "meta": meta(generated_at=iso(T0_S, "%Y-%m-%dT%H:%M:%S+00:00"),
                         generated_at_period_seconds=300)}
UNAUTHORIZED = Reply(401, {"error": "Unauthorized: token expired"})


@pytest.fixture
def api():
    with FakeApi() as fake:
        yield fake


def provider(api, **kw):
    return WattTimeProvider("alice", "s3cret", base_url=api.url, timeout_s=2.0, **kw)


def test_first_forecast_point_is_the_current_value_in_g_per_kwh(api):
    """WattTime's v3 guide: the real-time value is the first point of /v3/forecast."""
    api.on("/login", Reply(body={"token": "tok-1"}))
    api.on("/v3/forecast", Reply(body=FORECAST))
    api.on("/v3/historical", Reply(body=HISTORICAL))

    reading = provider(api).fetch("CAISO_NORTH", NOW_S)

    assert reading.g_per_kwh == pytest.approx(800.0 * LB_PER_MWH_TO_G_PER_KWH)
    assert reading.g_per_kwh == pytest.approx(800.0 * 0.4536, rel=1e-4)
    assert reading.at_s == T0_S + 300
    assert (reading.signal, reading.source, reading.status, reading.error) == ("marginal", "watttime", "fresh", "")
    assert [t for t, _ in reading.forecast] == [T0_S + 300, T0_S + 600]
    assert [g for _, g in reading.forecast] == pytest.approx([800.0 * LB_PER_MWH_TO_G_PER_KWH,
                                                              700.0 * LB_PER_MWH_TO_G_PER_KWH])
    login = api.calls("/login")[0]
    assert login.headers["authorization"] == "Basic " + base64.b64encode(b"alice:s3cret").decode()
    forecast = api.calls("/v3/forecast")[0]
    assert forecast.headers["authorization"] == "Bearer tok-1"
    assert forecast.params == {"region": "CAISO_NORTH", "signal_type": "co2_moer"}
    assert api.calls("/v3/historical") == []  # for analysis after the fact, and it may lag


def test_a_lagging_historical_series_is_not_preferred(api):
    """Historical data an hour behind must not override the real-time (first forecast) value."""
    lagging = {"data": [{"point_time": iso(T0_S - 3600, "%Y-%m-%dT%H:%M:%S+00:00"), "value": 1500.0}],
               "meta": meta()}
    api.on("/login", Reply(body={"token": "tok-1"}))
    api.on("/v3/forecast", Reply(body=FORECAST))
    api.on("/v3/historical", Reply(body=lagging))

    reading = provider(api, with_forecast=False).fetch("CAISO_NORTH", NOW_S)

    assert reading.g_per_kwh == pytest.approx(800.0 * LB_PER_MWH_TO_G_PER_KWH)
    assert reading.at_s == T0_S + 300 and reading.forecast == ()


def test_horizon_hours_is_passed_on(api):
    api.on("/login", Reply(body={"token": "tok-1"}))
    api.on("/v3/forecast", Reply(body=FORECAST))
    provider(api, horizon_hours=6).fetch("CAISO_NORTH", NOW_S)
    assert api.calls("/v3/forecast")[0].params["horizon_hours"] == "6"


def test_token_is_reused_then_renewed_once_on_401(api):
    api.on("/login", Reply(body={"token": "tok-1"}), Reply(body={"token": "tok-2"}))
    api.on("/v3/forecast", Reply(body=FORECAST), UNAUTHORIZED, Reply(body=FORECAST))
    wt = provider(api, with_forecast=False)

    wt.fetch("CAISO_NORTH", NOW_S)
    reading = wt.fetch("CAISO_NORTH", NOW_S)

    assert reading.g_per_kwh == pytest.approx(800 * 0.45359237)
    assert wt.logins == 2
    bearers = [c.headers["authorization"] for c in api.calls("/v3/forecast")]
    assert bearers == ["Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]


def test_persistent_401_is_not_retried_forever(api):
    api.on("/login", Reply(body={"token": "tok-1"}), Reply(body={"token": "tok-2"}), Reply(body={"token": "tok-3"}))
    api.on("/v3/forecast", UNAUTHORIZED)
    api.on("/v3/historical", UNAUTHORIZED)
    with pytest.raises(CarbonProviderError) as caught:
        provider(api).fetch("CAISO_NORTH", NOW_S)
    assert caught.value.status == 401 and not caught.value.retryable
    assert len(api.calls("/v3/forecast")) == 2


def test_bad_credentials_say_what_to_check(api):
    api.on("/login", Reply(403, {"error": "invalid credentials"}))
    with pytest.raises(CarbonProviderError, match="username and password") as caught:
        provider(api).fetch("CAISO_NORTH", NOW_S)
    assert caught.value.status == 403 and not caught.value.retryable


def test_plan_without_forecast_falls_back_to_historical_and_says_it_may_lag(api):
    api.on("/login", Reply(body={"token": "tok-1"}))
    api.on("/v3/forecast", Reply(403, {"error": "Forbidden: no access to forecast data"}))
    api.on("/v3/historical", Reply(body=HISTORICAL))

    reading = provider(api).fetch("CAISO_NORTH", NOW_S)

    assert reading.g_per_kwh == pytest.approx(1000.0 * LB_PER_MWH_TO_G_PER_KWH)
    assert reading.at_s == T0_S  # the latest point not in the future
    assert reading.source == "watttime/historical" and reading.forecast == ()
    assert "may lag" in reading.error and "HTTP 403" in reading.error
    assert api.calls("/v3/historical")[0].params == {
        "region": "CAISO_NORTH", "signal_type": "co2_moer",
        "start": "2023-11-14T21:13:20Z", "end": "2023-11-14T22:13:20Z"}


def test_empty_forecast_falls_back_to_historical(api):
    api.on("/login", Reply(body={"token": "tok-1"}))
    api.on("/v3/forecast", Reply(body={"data": [], "meta": meta()}))
    api.on("/v3/historical", Reply(body=HISTORICAL))
    reading = provider(api).fetch("CAISO_NORTH", NOW_S)
    assert reading.source == "watttime/historical" and reading.at_s == T0_S


def test_no_data_anywhere_is_a_retryable_no_data_error(api):
    api.on("/login", Reply(body={"token": "tok-1"}))
    api.on("/v3/forecast", Reply(body={"data": [], "meta": meta()}))
    api.on("/v3/historical", Reply(body={"data": [], "meta": meta()}))
    with pytest.raises(CarbonProviderError, match="no point") as caught:
        provider(api).fetch("CAISO_NORTH", NOW_S)
    assert caught.value.retryable and caught.value.no_data


def test_average_signal_type_is_labelled_average(api):
    api.on("/login", Reply(body={"token": "tok-1"}))
    api.on("/v3/forecast", Reply(body={**FORECAST, "meta": meta(signal_type="co2_aoer")}))
    reading = provider(api, signal_type="co2_aoer", with_forecast=False).fetch("CAISO_NORTH", NOW_S)
    assert reading.signal == "average"
    assert api.calls("/v3/forecast")[0].params["signal_type"] == "co2_aoer"


@pytest.mark.parametrize("reply, retryable, word", [
    (Reply(body={"data": [], "meta": meta(units="usd_per_mwh")}), False, "units"),
    (Reply(body="<html>oops"), True, "malformed JSON"),
    (Reply(429, {"error": "rate limit"}), True, "rate limit"),
    (Reply(500, {"error": "internal"}), True, "internal"),
    (Reply(400, {"error": "region 'NOPE' is not valid"}), False, "NOPE"),
])
def test_data_errors(api, reply, retryable, word):
    api.on("/login", Reply(body={"token": "tok-1"}))
    api.on("/v3/forecast", reply)
    api.on("/v3/historical", reply)
    with pytest.raises(CarbonProviderError, match=word) as caught:
        provider(api).fetch("CAISO_NORTH", NOW_S)
    assert caught.value.retryable is retryable


def test_unknown_signal_type_is_refused():
    with pytest.raises(ValueError, match="signal_type"):
        WattTimeProvider("a", "b", signal_type="health_damage")
