"""Electricity Maps API v3: latest location-based (average) carbon intensity and its forecast."""

from __future__ import annotations

from wattwise.models.ports import CarbonReading, CarbonSignal
from wattwise.telemetry.carbon.errors import CarbonProviderError
from wattwise.telemetry.carbon.http_json import get_json
from wattwise.telemetry.carbon.parsing import array, field, number, shape_error, timestamp
from wattwise.telemetry.carbon.provider import reading_with_forecast
from wattwise.telemetry.carbon.timeparse import format_utc

DEFAULT_BASE_URL = "https://api.electricitymap.org"


class ElectricityMapsProvider:
    """`GET {base}/v3/carbon-intensity/latest?zone=` with header `auth-token`; with
    `with_forecast`, also `/v3/carbon-intensity/forecast?zone=`. A forecast failure keeps the
    latest value and is reported in the reading's `error`.

    `carbonIntensity: null` is how the API says it has no value yet for that zone and hour: a
    retryable "no data" error (the cache then serves the last value as stale, or the default),
    not a changed API. Forecast hours with a null value are left out of the forecast."""

    name = "electricitymaps"
    signal = CarbonSignal.AVERAGE

    def __init__(self, auth_token: str, *, base_url: str = DEFAULT_BASE_URL, timeout_s: float = 5.0,
                 with_forecast: bool = True, emission_factor_type: str | None = None):
        if emission_factor_type not in (None, "lifecycle", "direct"):
            raise ValueError("emission_factor_type must be 'lifecycle', 'direct' or None")
        self._auth_token = auth_token
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.with_forecast = with_forecast
        self.emission_factor_type = emission_factor_type

    def __repr__(self) -> str:
        return f"ElectricityMapsProvider(base_url={self.base_url!r}, timeout_s={self.timeout_s})"

    def fetch(self, zone: str, now_s: float) -> CarbonReading:
        doc = self._get("latest", zone)
        value = field(self.name, doc, "carbonIntensity", "latest")
        at_s = timestamp(self.name, field(self.name, doc, "datetime", "latest"), "latest.datetime")
        if value is None:
            raise CarbonProviderError(
                self.name, f"no carbon intensity yet for zone {zone!r} at {format_utc(at_s)} "
                "(latest.carbonIntensity is null)", retryable=True, no_data=True,
                hint="Electricity Maps has not computed this zone's value for the hour yet; "
                     "the last value (marked stale) or the default is served meanwhile")
        g_per_kwh = number(self.name, value, "latest.carbonIntensity")
        return reading_with_forecast(self, zone, g_per_kwh, at_s,
                                     (lambda: self._forecast(zone)) if self.with_forecast else None)

    def _forecast(self, zone: str) -> tuple[tuple[float, float], ...]:
        doc = self._get("forecast", zone)
        points = array(self.name, field(self.name, doc, "forecast", "forecast"), "forecast.forecast")
        out = []
        for i, point in enumerate(points):
            where = f"forecast.forecast[{i}]"
            at_s = timestamp(self.name, field(self.name, point, "datetime", where), where + ".datetime")
            value = field(self.name, point, "carbonIntensity", where)
            if value is not None:  # no forecast for that hour: a gap, not a broken answer
                out.append((at_s, number(self.name, value, where + ".carbonIntensity")))
        return tuple(sorted(out))

    def _get(self, endpoint: str, zone: str) -> dict:
        params = {"zone": zone}
        if self.emission_factor_type:
            params["emissionFactorType"] = self.emission_factor_type
        doc = get_json(self.name, f"{self.base_url}/v3/carbon-intensity/{endpoint}", params=params,
                       headers={"auth-token": self._auth_token}, timeout_s=self.timeout_s,
                       auth_hint="check the Electricity Maps auth_token and that its plan covers "
                                 f"zone {zone!r} and the /{endpoint} endpoint",
                       not_found_hint=f"check the zone code {zone!r} (e.g. 'DE', 'US-CAL-CISO') "
                                      "and base_url")
        if not isinstance(doc, dict):
            raise shape_error(self.name, f"{endpoint} answer is not an object")
        return doc
