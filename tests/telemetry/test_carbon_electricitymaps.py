"""Electricity Maps v3 adapter against a loopback server that answers in the real format."""

import logging
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from carbon_fakes import FakeApi, Reply, iso  # noqa: E402

from wattwise.telemetry.carbon.cached import CachedCarbonSource  # noqa: E402
from wattwise.telemetry.carbon.electricitymaps import ElectricityMapsProvider  # noqa: E402
from wattwise.telemetry.carbon.errors import CarbonProviderError  # noqa: E402

NOW_S = 1_700_000_000.0  # 2023-11-14T22:13:20Z
HOUR_S = 1_699_999_200.0  # 2023-11-14T22:00:00Z

LATEST = {"zone": "DE", "carbonIntensity": 302, "datetime": iso(HOUR_S),
          "updatedAt": "2023-11-14T21:46:10.233Z", "createdAt": "2023-11-11T22:42:35.805Z",
          "emissionFactorType": "lifecycle", "isEstimated": True,
          "estimationMethod": "TIME_SLICER_AVERAGE"}
FORECAST = {"zone": "DE", "updatedAt": "2023-11-14T21:46:10.233Z",
            "forecast": [{"carbonIntensity": 290, "datetime": iso(HOUR_S + 7200)},
                         {"carbonIntensity": 295, "datetime": iso(HOUR_S + 3600)}]}


@pytest.fixture
def api():
    with FakeApi() as fake:
        yield fake


def provider(api, **kw):
    return ElectricityMapsProvider("secret-token", base_url=api.url, timeout_s=kw.pop("timeout_s", 2.0),
                                   **kw)


def test_latest_and_forecast_are_parsed(api):
    api.on("/v3/carbon-intensity/latest", Reply(body=LATEST))
    api.on("/v3/carbon-intensity/forecast", Reply(body=FORECAST))

    reading = provider(api).fetch("DE", NOW_S)

    assert reading.g_per_kwh == 302.0
    assert reading.at_s == HOUR_S
    assert (reading.zone, reading.signal, reading.status, reading.source) == (
        "DE", "average", "fresh", "electricitymaps")
    assert reading.forecast == ((HOUR_S + 3600, 295.0), (HOUR_S + 7200, 290.0))
    assert reading.error == ""
    call = api.calls("/v3/carbon-intensity/latest")[0]
    assert call.params == {"zone": "DE"}
    assert call.headers["auth-token"] == "secret-token"


def test_emission_factor_type_is_requested(api):
    api.on("/v3/carbon-intensity/latest", Reply(body={**LATEST, "emissionFactorType": "direct"}))
    provider(api, with_forecast=False, emission_factor_type="direct").fetch("DE", NOW_S)
    assert api.calls("/v3/carbon-intensity/latest")[0].params["emissionFactorType"] == "direct"
    assert api.calls("/v3/carbon-intensity/forecast") == []


@pytest.mark.parametrize("reply, retryable, status, words", [
    (Reply(401, {"error": "Invalid auth-token"}), False, 401, ["Invalid auth-token", "auth_token"]),
    (Reply(404, {"status": "error", "message": "Zone 'XX' does not exist."}), False, 404,
     ["does not exist", "zone code"]),
    (Reply(429, {"status": "error", "message": "Rate limit exceeded"}, {"Retry-After": "30"}), True,
     429, ["Rate limit exceeded", "30 s"]),
    (Reply(500, {"status": "error", "message": "Unknown error occured."}), True, 500,
     ["Unknown error"]),
    (Reply(502, "<html><body>Bad Gateway</body></html>", {"Content-Type": "text/html"}), True, 502,
     ["Bad Gateway"]),
])
def test_http_errors_become_one_typed_error(api, reply, retryable, status, words):
    api.on("/v3/carbon-intensity/latest", reply)

    with pytest.raises(CarbonProviderError) as caught:
        provider(api).fetch("DE", NOW_S)

    error = caught.value
    assert (error.retryable, error.status, error.provider) == (retryable, status, "electricitymaps")
    text = str(error)
    assert text.startswith(f"electricitymaps: HTTP {status}")
    for word in words:
        assert word in text
    if status == 429:
        assert error.retry_after_s == 30.0


def test_malformed_json_is_a_retryable_error(api):
    api.on("/v3/carbon-intensity/latest", Reply(body='{"zone": "DE", "carbonIntens'))
    with pytest.raises(CarbonProviderError, match="malformed JSON") as caught:
        provider(api).fetch("DE", NOW_S)
    assert caught.value.retryable


@pytest.mark.parametrize("body, word", [
    ({"zone": "DE", "datetime": iso(HOUR_S)}, "carbonIntensity"),
    ({**LATEST, "carbonIntensity": "n/a"}, "carbonIntensity"),
    ({**LATEST, "datetime": "yesterday"}, "datetime"),
    ([LATEST], "not an object"),
])
def test_unexpected_shapes_are_not_retryable(api, body, word):
    api.on("/v3/carbon-intensity/latest", Reply(body=body))
    with pytest.raises(CarbonProviderError, match=word) as caught:
        provider(api, with_forecast=False).fetch("DE", NOW_S)
    assert not caught.value.retryable


# What the API answers for a zone whose value for the hour is not computed yet.
NO_DATA_YET = {**LATEST, "carbonIntensity": None, "isEstimated": None, "estimationMethod": None}


def test_null_carbon_intensity_is_retryable_no_data_not_a_changed_api(api):
    api.on("/v3/carbon-intensity/latest", Reply(body=NO_DATA_YET))
    with pytest.raises(CarbonProviderError) as caught:
        provider(api, with_forecast=False).fetch("DE", NOW_S)
    error = caught.value
    assert error.retryable and error.no_data and error.status is None
    assert "no carbon intensity yet for zone 'DE' at 2023-11-14T22:00:00Z" in str(error)
    assert "may have changed" not in str(error)


class Clock:
    def __init__(self, t_s):
        self.t_s = t_s

    def __call__(self):
        return self.t_s


def test_null_serves_the_last_value_as_stale_then_recovers(api, caplog):
    api.on("/v3/carbon-intensity/latest", Reply(body=LATEST), Reply(body=NO_DATA_YET), Reply(body=LATEST))
    clock = Clock(NOW_S)
    with CachedCarbonSource(provider(api, with_forecast=False), ttl_s=300, default_g_per_kwh=500.0, clock=clock,
                            failure_backoff_s=10.0) as carbon:
        assert carbon.intensity("DE", NOW_S).status == "fresh"
        clock.t_s += 301
        with caplog.at_level(logging.INFO, logger="wattwise.telemetry.carbon.cached"):
            stale = carbon.intensity("DE", clock.t_s)
        assert (stale.status, stale.g_per_kwh, stale.age_s) == ("stale", 302.0, 301.0)
        assert "no carbon intensity yet" in stale.error and "may have changed" not in stale.error
        logged = [r for r in caplog.records if "electricitymaps" in r.getMessage()]
        assert [r.levelno for r in logged] == [logging.INFO]
        assert "has no data yet for zone DE" in logged[0].getMessage()
        clock.t_s += 11  # the backoff of a retryable error is short
        assert carbon.intensity("DE", clock.t_s).status == "fresh"


def test_null_before_any_value_serves_the_default(api):
    api.on("/v3/carbon-intensity/latest", Reply(body=NO_DATA_YET))
    with CachedCarbonSource(provider(api, with_forecast=False), ttl_s=300, default_g_per_kwh=450.0,
                            clock=Clock(NOW_S)) as carbon:
        reading = carbon.intensity("DE", NOW_S)
    assert (reading.status, reading.g_per_kwh) == ("default", 450.0)
    assert "no carbon intensity yet" in reading.error and "configured default 450" in reading.error


def test_null_forecast_hours_are_gaps(api):
    api.on("/v3/carbon-intensity/latest", Reply(body=LATEST))
    api.on("/v3/carbon-intensity/forecast", Reply(body={**FORECAST, "forecast": [
        *FORECAST["forecast"], {"carbonIntensity": None, "datetime": iso(HOUR_S + 10800)}]}))
    reading = provider(api).fetch("DE", NOW_S)
    assert reading.forecast == ((HOUR_S + 3600, 295.0), (HOUR_S + 7200, 290.0)) and reading.error == ""


def test_forecast_failure_keeps_the_latest_value_and_says_so(api):
    api.on("/v3/carbon-intensity/latest", Reply(body=LATEST))
    api.on("/v3/carbon-intensity/forecast",
           Reply(403, {"error": "Your plan does not include access to forecast"}))

    reading = provider(api).fetch("DE", NOW_S)

    assert reading.g_per_kwh == 302.0 and reading.forecast == ()
    assert "forecast unavailable" in reading.error and "HTTP 403" in reading.error


def test_hanging_server_is_cut_at_the_timeout(api):
    api.on("/v3/carbon-intensity/latest", Reply(body=LATEST, delay_s=5.0))
    started = time.monotonic()
    with pytest.raises(CarbonProviderError, match="within 0.3 s") as caught:
        provider(api, timeout_s=0.3).fetch("DE", NOW_S)
    assert time.monotonic() - started < 1.5
    assert caught.value.retryable


def test_unreachable_server_is_retryable():
    dead = ElectricityMapsProvider("t", base_url="http://127.0.0.1:9", timeout_s=0.5)
    with pytest.raises(CarbonProviderError, match="cannot reach") as caught:
        dead.fetch("DE", NOW_S)
    assert caught.value.retryable


def test_token_is_not_in_repr():
    assert "secret" not in repr(ElectricityMapsProvider("secret-token"))
