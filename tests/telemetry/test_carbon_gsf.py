"""Green Software Foundation carbon-aware-sdk WebAPI adapter."""

import logging
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from carbon_fakes import FakeApi, Reply, iso  # noqa: E402

from wattwise.telemetry.carbon.errors import CarbonProviderError  # noqa: E402
from wattwise.telemetry.carbon.gsf import CarbonAwareSdkProvider  # noqa: E402

NOW_S = 1_700_000_000.0  # 2023-11-14T22:13:20Z
T_S = 1_699_999_800.0  # 22:10Z


def point(at_s, rating):
    return {"location": "westus", "time": iso(at_s, "%Y-%m-%dT%H:%M:%S+00:00"), "rating": rating,
            "duration": "00:05:00"}


BYLOCATION = [point(T_S - 600, 410.0), point(T_S, 402.5), point(T_S - 300, 405.0),
              point(T_S + 300, 1.0)]
FORECASTS = [{"requestedAt": iso(NOW_S), "generatedAt": iso(T_S), "location": "westus",
              "dataStartAt": iso(T_S + 300), "dataEndAt": iso(T_S + 900), "windowSize": 5,
              "optimalDataPoints": [{"location": "westus", "timestamp": iso(T_S + 900),
                                     "duration": 5, "value": 380.0}],
              "forecastData": [
                  {"location": "westus", "timestamp": iso(T_S + 600), "duration": 5, "value": 390.0},
                  {"location": "westus", "timestamp": iso(T_S + 300), "duration": 5, "value": 395.5},
                  {"location": "westus", "timestamp": iso(T_S + 900), "duration": 5, "value": 380.0}]}]


@pytest.fixture
def api():
    with FakeApi() as fake:
        yield fake


def provider(api, **kw):
    return CarbonAwareSdkProvider(api.url, timeout_s=2.0, **kw)


def test_latest_rating_and_forecast(api):
    api.on("/emissions/bylocation", Reply(body=BYLOCATION))
    api.on("/emissions/forecasts/current", Reply(body=FORECASTS))

    reading = provider(api).fetch("westus", NOW_S)

    assert (reading.g_per_kwh, reading.at_s, reading.signal) == (402.5, T_S, "marginal")
    assert reading.forecast == ((T_S + 300, 395.5), (T_S + 600, 390.0), (T_S + 900, 380.0))
    assert api.calls("/emissions/bylocation")[0].params == {
        "location": "westus", "time": "2023-11-14T21:13:20Z", "toTime": "2023-11-14T22:13:20Z"}
    assert api.calls("/emissions/forecasts/current")[0].params == {"location": "westus"}


def test_signal_is_a_setting(api):
    api.on("/emissions/bylocation", Reply(body=BYLOCATION))
    assert provider(api, signal="average", with_forecast=False).fetch("westus", NOW_S).signal == "average"


def test_validation_problem_details_are_reported(api):
    api.on("/emissions/bylocation", Reply(400, {
        "type": "https://tools.ietf.org/html/rfc7231#section-6.5.1",
        "title": "One or more validation errors occurred.", "status": 400,
        "detail": "Location 'nowhere' not found", "errors": {"location": ["not found"]}}))
    with pytest.raises(CarbonProviderError, match="Location 'nowhere' not found") as caught:
        provider(api).fetch("nowhere", NOW_S)
    assert caught.value.status == 400 and not caught.value.retryable
    assert "validation errors" in str(caught.value)


def test_no_data_is_a_retryable_error(api):
    api.on("/emissions/bylocation", Reply(body=[]))
    with pytest.raises(CarbonProviderError, match="no emissions data") as caught:
        provider(api).fetch("westus", NOW_S)
    assert caught.value.retryable


def test_forecast_failure_keeps_the_value(api):
    api.on("/emissions/bylocation", Reply(body=BYLOCATION))
    api.on("/emissions/forecasts/current", Reply(500, {"title": "Internal Server Error", "status": 500}))
    reading = provider(api).fetch("westus", NOW_S)
    assert reading.g_per_kwh == 402.5 and "forecast unavailable" in reading.error


@pytest.mark.parametrize("body, word", [
    ({"location": "westus"}, "not a list"),
    ([{"location": "westus", "time": iso(T_S)}], "rating"),
    ([{"location": "westus", "time": iso(T_S), "rating": "high"}], "not a number"),
])
def test_unexpected_shapes(api, body, word):
    api.on("/emissions/bylocation", Reply(body=body))
    with pytest.raises(CarbonProviderError, match=word):
        provider(api).fetch("westus", NOW_S)


def test_204_no_content_means_no_data_not_malformed_json(api):
    """The WebAPI's GetEmissionsDataForLocationsByTime answers NoContent() when it has nothing."""
    api.on("/emissions/bylocation", Reply(204, b"", {"Content-Type": "text/plain"}))
    with pytest.raises(CarbonProviderError) as caught:
        provider(api).fetch("westus", NOW_S)
    error = caught.value
    assert error.retryable and error.no_data and error.status == 204
    assert "no emissions data for location 'westus'" in str(error)
    assert "malformed" not in str(error) and "may have changed" not in str(error)


# The WebAPI's HttpResponseExceptionFilter turns NotImplementedException into this.
NOT_IMPLEMENTED = Reply(501, {"title": "NotImplementedException", "status": 501,
                              "detail": "The method or operation is not implemented."})


def test_501_from_forecasts_stops_asking_and_says_so_once(api, caplog):
    api.on("/emissions/bylocation", Reply(body=BYLOCATION))
    api.on("/emissions/forecasts/current", NOT_IMPLEMENTED)
    sdk = provider(api)

    with caplog.at_level(logging.INFO, logger="wattwise.telemetry.carbon"):
        readings = [sdk.fetch("westus", NOW_S), sdk.fetch("westus", NOW_S), sdk.fetch("eastus", NOW_S)]

    assert [r.g_per_kwh for r in readings] == [402.5, 402.5, 402.5]
    assert all(r.forecast == () and r.error == "" for r in readings)
    assert len(api.calls("/emissions/forecasts/current")) == 1
    assert not sdk.forecasts_supported
    said = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert len(said) == 1 and said[0].levelno == logging.WARNING
    assert "no forecasts" in said[0].getMessage() and "no longer requested" in said[0].getMessage()


def test_other_forecast_errors_are_still_retried(api):
    api.on("/emissions/bylocation", Reply(body=BYLOCATION))
    api.on("/emissions/forecasts/current", Reply(503, {"title": "Service Unavailable"}), Reply(body=FORECASTS))
    sdk = provider(api)
    assert "forecast unavailable" in sdk.fetch("westus", NOW_S).error
    assert sdk.fetch("westus", NOW_S).forecast[0] == (T_S + 300, 395.5)
    assert sdk.forecasts_supported
