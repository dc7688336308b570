"""WattTime v3 adapter: login, bearer token renewal on 401, lbs/MWh -> g/kWh, latest point."""

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


def test_latest_past_point_and_forecast_in_g_per_kwh(api):
    api.on("/login", Reply(body={"token": "tok-1"}))
    api.on("/v3/historical", Reply(body=HISTORICAL))
    api.on("/v3/forecast", Reply(body=FORECAST))

    reading = provider(api).fetch("CAISO_NORTH", NOW_S)

    assert reading.g_per_kwh == pytest.approx(1000.0 * LB_PER_MWH_TO_G_PER_KWH)
    assert reading.g_per_kwh == pytest.approx(453.59, abs=0.01)
    assert reading.at_s == T0_S
    assert (reading.signal, reading.source, reading.status) == ("marginal", "watttime", "fresh")
    assert [t for t, _ in reading.forecast] == [T0_S + 300, T0_S + 600]
    assert [g for _, g in reading.forecast] == pytest.approx([800.0 * LB_PER_MWH_TO_G_PER_KWH,
                                                              700.0 * LB_PER_MWH_TO_G_PER_KWH])
    login = api.calls("/login")[0]
    assert login.headers["authorization"] == "Basic " + base64.b64encode(b"alice:s3cret").decode()
    historical = api.calls("/v3/historical")[0]
    assert historical.headers["authorization"] == "Bearer tok-1"
    assert historical.params == {"region": "CAISO_NORTH", "signal_type": "co2_moer",
                                 "start": "2023-11-14T21:13:20Z", "end": "2023-11-14T22:13:20Z"}


def test_token_is_reused_then_renewed_once_on_401(api):
    api.on("/login", Reply(body={"token": "tok-1"}), Reply(body={"token": "tok-2"}))
    api.on("/v3/historical", Reply(body=HISTORICAL), UNAUTHORIZED, Reply(body=HISTORICAL))
    wt = provider(api, with_forecast=False)

    wt.fetch("CAISO_NORTH", NOW_S)
    reading = wt.fetch("CAISO_NORTH", NOW_S)

    assert reading.g_per_kwh == pytest.approx(453.59237)
    assert wt.logins == 2
    bearers = [c.headers["authorization"] for c in api.calls("/v3/historical")]
    assert bearers == ["Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]


def test_persistent_401_is_not_retried_forever(api):
    api.on("/login", Reply(body={"token": "tok-1"}), Reply(body={"token": "tok-2"}))
    api.on("/v3/historical", UNAUTHORIZED)
    with pytest.raises(CarbonProviderError) as caught:
        provider(api).fetch("CAISO_NORTH", NOW_S)
    assert caught.value.status == 401 and not caught.value.retryable
    assert len(api.calls("/v3/historical")) == 2 and len(api.calls("/login")) == 2


def test_bad_credentials_say_what_to_check(api):
    api.on("/login", Reply(403, {"error": "invalid credentials"}))
    with pytest.raises(CarbonProviderError, match="username and password") as caught:
        provider(api).fetch("CAISO_NORTH", NOW_S)
    assert caught.value.status == 403 and not caught.value.retryable


def test_no_past_point_falls_back_to_first_forecast_point(api):
    api.on("/login", Reply(body={"token": "tok-1"}))
    api.on("/v3/historical", Reply(body={"data": [], "meta": meta()}))
    api.on("/v3/forecast", Reply(body=FORECAST))

    reading = provider(api, with_forecast=False).fetch("CAISO_NORTH", NOW_S)

    assert reading.at_s == T0_S + 300
    assert reading.g_per_kwh == pytest.approx(800.0 * LB_PER_MWH_TO_G_PER_KWH)
    assert reading.source == "watttime/forecast"
    assert reading.forecast == ()


def test_plan_without_historical_uses_forecast_and_says_so(api):
    api.on("/login", Reply(body={"token": "tok-1"}))
    api.on("/v3/historical", Reply(403, {"error": "Forbidden: no access to historical data"}))
    api.on("/v3/forecast", Reply(body=FORECAST))

    reading = provider(api).fetch("CAISO_NORTH", NOW_S)

    assert reading.source == "watttime/forecast"
    assert "historical unavailable" in reading.error and "HTTP 403" in reading.error


def test_average_signal_type_is_labelled_average(api):
    api.on("/login", Reply(body={"token": "tok-1"}))
    api.on("/v3/historical", Reply(body={**HISTORICAL, "meta": meta(signal_type="co2_aoer")}))
    reading = provider(api, signal_type="co2_aoer", with_forecast=False).fetch("CAISO_NORTH", NOW_S)
    assert reading.signal == "average"
    assert api.calls("/v3/historical")[0].params["signal_type"] == "co2_aoer"


@pytest.mark.parametrize("reply, retryable, word", [
    (Reply(body={"data": [], "meta": meta(units="usd_per_mwh")}), False, "units"),
    (Reply(body="<html>oops"), True, "malformed JSON"),
    (Reply(429, {"error": "rate limit"}), True, "rate limit"),
    (Reply(500, {"error": "internal"}), True, "internal"),
    (Reply(400, {"error": "region 'NOPE' is not valid"}), False, "NOPE"),
])
def test_data_errors(api, reply, retryable, word):
    api.on("/login", Reply(body={"token": "tok-1"}))
    api.on("/v3/historical", reply)
    with pytest.raises(CarbonProviderError, match=word) as caught:
        provider(api).fetch("CAISO_NORTH", NOW_S)
    assert caught.value.retryable is retryable


def test_unknown_signal_type_is_refused():
    with pytest.raises(ValueError, match="signal_type"):
        WattTimeProvider("a", "b", signal_type="health_damage")
