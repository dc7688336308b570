"""UK Carbon Intensity API adapter: actual else forecast, GB only, 24 h forecast."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from carbon_fakes import FakeApi, Reply  # noqa: E402

from wattwise.telemetry.carbon.errors import CarbonProviderError  # noqa: E402
from wattwise.telemetry.carbon.uk import UkCarbonIntensityProvider  # noqa: E402

NOW_S = 1_700_000_000.0  # 2023-11-14T22:13:20Z
HALF_HOUR_S = 1_699_999_200.0  # 22:00Z


def period(start, end, forecast, actual, index="moderate"):
    return {"from": start, "to": end, "intensity": {"forecast": forecast, "actual": actual, "index": index}}


CURRENT = {"data": [period("2023-11-14T22:00Z", "2023-11-14T22:30Z", 128, None)]}
CLOSED = {"data": [period("2023-11-14T22:00Z", "2023-11-14T22:30Z", 128, 119, "low")]}
FW24H = {"data": [period("2023-11-14T22:30Z", "2023-11-14T23:00Z", 125, None),
                  period("2023-11-14T22:00Z", "2023-11-14T22:30Z", 128, None),
                  period("2023-11-14T23:00Z", "2023-11-14T23:30Z", 117, None, "low")]}
FORECAST_PATH = "/intensity/2023-11-14T22:13Z/fw24h"


@pytest.fixture
def api():
    with FakeApi() as fake:
        yield fake


def provider(api, **kw):
    return UkCarbonIntensityProvider(base_url=api.url, timeout_s=2.0, **kw)


def test_current_half_hour_uses_forecast_when_no_actual(api):
    api.on("/intensity", Reply(body=CURRENT))
    api.on(FORECAST_PATH, Reply(body=FW24H))

    reading = provider(api).fetch("GB", NOW_S)

    assert (reading.g_per_kwh, reading.at_s, reading.signal) == (128.0, HALF_HOUR_S, "average")
    assert reading.forecast == ((HALF_HOUR_S, 128.0), (HALF_HOUR_S + 1800, 125.0),
                                (HALF_HOUR_S + 3600, 117.0))


def test_actual_wins_over_forecast(api):
    api.on("/intensity", Reply(body=CLOSED))
    assert provider(api, with_forecast=False).fetch("GB", NOW_S).g_per_kwh == 119.0
    assert api.calls(FORECAST_PATH) == []


def test_other_zones_are_refused_without_a_request(api):
    with pytest.raises(CarbonProviderError, match="only serves zone 'GB'") as caught:
        provider(api).fetch("DE", NOW_S)
    assert not caught.value.retryable
    assert api.seen == []


def test_forecast_error_body_is_reported_on_the_reading(api):
    api.on("/intensity", Reply(body=CURRENT))
    api.on(FORECAST_PATH, Reply(400, {"error": {"code": "400 Bad Request",
                                                "message": "Please enter a valid ISO 8601 datetime"}}))
    reading = provider(api).fetch("GB", NOW_S)
    assert reading.forecast == () and reading.status == "fresh"
    assert "valid ISO 8601 datetime" in reading.error


@pytest.mark.parametrize("reply, retryable, word", [
    (Reply(500, {"error": {"code": "500 Internal Server Error", "message": "Server error"}}), True,
     "Server error"),
    (Reply(body={"data": []}), False, "no period"),
    (Reply(body={"data": [{"from": "2023-11-14T22:00Z", "to": "2023-11-14T22:30Z"}]}), False,
     "intensity"),
    (Reply(body="not json"), True, "malformed JSON"),
])
def test_errors(api, reply, retryable, word):
    api.on("/intensity", reply)
    with pytest.raises(CarbonProviderError, match=word) as caught:
        provider(api).fetch("GB", NOW_S)
    assert caught.value.retryable is retryable
