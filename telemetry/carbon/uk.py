"""UK Carbon Intensity API (National Grid ESO, no key): half-hourly average intensity for GB."""

from __future__ import annotations

from wattwise.models.ports import CarbonReading, CarbonSignal
from wattwise.telemetry.carbon.errors import CarbonProviderError
from wattwise.telemetry.carbon.http_json import get_json
from wattwise.telemetry.carbon.parsing import array, field, number, shape_error, timestamp
from wattwise.telemetry.carbon.provider import reading_with_forecast
from wattwise.telemetry.carbon.timeparse import format_utc

DEFAULT_BASE_URL = "https://api.carbonintensity.org.uk"
ZONE = "GB"


class UkCarbonIntensityProvider:
    """`GET {base}/intensity` -> {data: [{from, to, intensity: {forecast, actual, index}}]}; the
    value is `actual`, else `forecast` (the current half hour has no actual yet). With
    `with_forecast`, also `GET {base}/intensity/{now}/fw24h` for the next 24 hours."""

    name = "uk-carbon-intensity"
    signal = CarbonSignal.AVERAGE

    def __init__(self, *, base_url: str = DEFAULT_BASE_URL, timeout_s: float = 5.0,
                 with_forecast: bool = True):
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.with_forecast = with_forecast

    def __repr__(self) -> str:
        return f"UkCarbonIntensityProvider(base_url={self.base_url!r})"

    def fetch(self, zone: str, now_s: float) -> CarbonReading:
        if zone != ZONE:
            raise CarbonProviderError(self.name, f"zone {zone!r} is not covered", retryable=False,
                                      hint="the UK Carbon Intensity API only serves zone 'GB'; "
                                           "pick another provider for other zones")
        periods = self._periods(f"{self.base_url}/intensity")
        if not periods:
            raise shape_error(self.name, "/intensity returned no period")
        at_s, _, g_per_kwh = periods[-1]
        url = f"{self.base_url}/intensity/{format_utc(now_s, minutes_only=True)}/fw24h"
        return reading_with_forecast(
            self, zone, g_per_kwh, at_s,
            (lambda: tuple((start_s, forecast_g) for start_s, forecast_g, _ in self._periods(url)))
            if self.with_forecast else None)

    def _periods(self, url: str) -> list[tuple[float, float, float]]:
        """(start_s, forecast g/kWh, best g/kWh = actual else forecast) per half hour, sorted."""
        doc = get_json(self.name, url, timeout_s=self.timeout_s,
                       not_found_hint="check base_url (expected https://api.carbonintensity.org.uk)")
        out = []
        for i, period in enumerate(array(self.name, field(self.name, doc, "data", "answer"), "data")):
            where = f"data[{i}]"
            start_s = timestamp(self.name, field(self.name, period, "from", where), where + ".from")
            intensity = field(self.name, period, "intensity", where)
            forecast_g = number(self.name, field(self.name, intensity, "forecast", where + ".intensity"),
                                where + ".intensity.forecast")
            actual = intensity.get("actual")
            best_g = forecast_g if actual is None else number(self.name, actual,
                                                               where + ".intensity.actual")
            out.append((start_s, forecast_g, best_g))
        return sorted(out)
