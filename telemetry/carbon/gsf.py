"""Green Software Foundation carbon-aware-sdk WebAPI: emissions by location and forecasts."""

from __future__ import annotations

import logging
import threading

from wattwise.models.ports import CarbonReading
from wattwise.telemetry.carbon.errors import CarbonProviderError
from wattwise.telemetry.carbon.http_json import get_json
from wattwise.telemetry.carbon.parsing import array, field, number, shape_error, timestamp
from wattwise.telemetry.carbon.provider import check_signal, reading_with_forecast
from wattwise.telemetry.carbon.timeparse import format_utc

log = logging.getLogger(__name__)


class CarbonAwareSdkProvider:
    """`GET {base}/emissions/bylocation?location=&time=&toTime=` -> [{location, time, rating,
    duration}] (the latest `time` not in the future wins; `rating` is g/kWh) and, with
    `with_forecast`, `GET {base}/emissions/forecasts/current?location=` -> [{location,
    forecastData: [{location, timestamp, duration, value}], ...}].

    The SDK relays whatever data source it is configured with (WattTime: marginal, Electricity
    Maps: average), so `signal` is a setting here.

    Two answers of the WebAPI are not faults: 204 No Content (empty body) from `/bylocation`
    means it has no emissions data for the location and time (a retryable "no data" error), and
    501 Not Implemented from `/forecasts/current` means its forecast data source cannot forecast
    (e.g. the JSON data source): then forecasts are no longer asked for, and this is logged once.
    `forecasts_supported` says which it is."""

    name = "carbon-aware-sdk"

    def __init__(self, base_url: str, *, signal: str = "marginal", timeout_s: float = 5.0,
                 lookback_s: float = 3600.0, with_forecast: bool = True):
        self.base_url = base_url.rstrip("/")
        self.signal = check_signal(signal)
        self.timeout_s = timeout_s
        self.lookback_s = lookback_s
        self.with_forecast = with_forecast
        self.forecasts_supported = True  # False once the SDK answered 501 to a forecast request
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CarbonAwareSdkProvider(base_url={self.base_url!r}, signal={self.signal.value!r})"

    def fetch(self, zone: str, now_s: float) -> CarbonReading:
        no_data = f"no emissions data for location {zone!r} in the last {self.lookback_s:g} s"
        doc = self._get("/emissions/bylocation", {
            "location": zone, "time": format_utc(now_s - self.lookback_s), "toTime": format_utc(now_s)},
            no_content_means=no_data)
        points = []
        for i, item in enumerate(array(self.name, doc, "bylocation")):
            where = f"bylocation[{i}]"
            at_s = timestamp(self.name, field(self.name, item, "time", where), where + ".time")
            if at_s <= now_s:
                points.append((at_s, number(self.name, field(self.name, item, "rating", where),
                                            where + ".rating")))
        if not points:
            raise CarbonProviderError(self.name, no_data, retryable=True, no_data=True,
                                      hint="check the location name and the SDK's data source")
        at_s, g_per_kwh = max(points)
        ask = self.with_forecast and self.forecasts_supported
        return reading_with_forecast(self, zone, g_per_kwh, at_s, (lambda: self._forecast(zone)) if ask else None)

    def _forecast(self, zone: str) -> tuple[tuple[float, float], ...]:
        try:
            doc = self._get("/emissions/forecasts/current", {"location": zone})
        except CarbonProviderError as exc:
            if exc.status != 501:
                raise
            with self._lock:
                first, self.forecasts_supported = self.forecasts_supported, False
            if first:
                log.warning("%s at %s has no forecasts (its forecast data source does not support "
                            "them: %s); forecasts are no longer requested from it, readings carry "
                            "the current value only", self.name, self.base_url, exc.problem)
            return ()
        forecasts = array(self.name, doc, "forecasts/current")
        if not forecasts:
            raise shape_error(self.name, "forecasts/current returned no forecast")
        chosen = next((f for f in forecasts if isinstance(f, dict) and f.get("location") == zone),
                      forecasts[0])
        out = []
        for i, point in enumerate(array(self.name, field(self.name, chosen, "forecastData", "forecast"),
                                        "forecast.forecastData")):
            where = f"forecast.forecastData[{i}]"
            out.append((timestamp(self.name, field(self.name, point, "timestamp", where), where + ".timestamp"),
                        number(self.name, field(self.name, point, "value", where), where + ".value")))
        return tuple(sorted(out))

    def _get(self, path: str, params: dict, no_content_means: str | None = None) -> object:
        return get_json(self.name, self.base_url + path, params=params, timeout_s=self.timeout_s,
                        auth_hint="the SDK WebAPI refused the request; check its data-source "
                                  "credentials",
                        not_found_hint=f"check the location {params['location']!r} and base_url",
                        no_content_means=no_content_means)
