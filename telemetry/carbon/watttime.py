"""WattTime API v3: marginal (co2_moer) or average (co2_aoer) emissions, converted to g/kWh."""

from __future__ import annotations

import logging
import threading

from wattwise.models.ports import CarbonReading, CarbonSignal
from wattwise.telemetry.carbon.errors import CarbonProviderError
from wattwise.telemetry.carbon.http_json import get_json
from wattwise.telemetry.carbon.parsing import array, field, number, shape_error, timestamp
from wattwise.telemetry.carbon.timeparse import format_utc

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.watttime.org"
G_PER_KWH_PER_LB_PER_MWH = 0.45359237  # 1 lb = 453.59237 g; 1 MWh = 1000 kWh
_SIGNALS = {"co2_moer": CarbonSignal.MARGINAL, "co2_aoer": CarbonSignal.AVERAGE}


class WattTimeProvider:
    """Logs in with HTTP basic auth (`GET {base}/login` -> {"token"}), then calls `/v3/forecast`
    with a bearer token; the token is renewed once when a call answers 401.

    The current value is the FIRST point of `/v3/forecast`: WattTime's v3 guide gives real-time
    data there, while `/v3/historical` is for analysis after the fact and may lag behind. Only
    when the forecast cannot be had (no access on the plan, an empty or failed answer) is the
    latest `/v3/historical` point not in the future used instead (within `lookback_s`); `source`
    and `error` then say so. Values arrive in lbs CO2/MWh and are served in g/kWh."""

    name = "watttime"

    def __init__(self, username: str, password: str, *, base_url: str = DEFAULT_BASE_URL,
                 signal_type: str = "co2_moer", timeout_s: float = 5.0, lookback_s: float = 3600.0,
                 with_forecast: bool = True, horizon_hours: int | None = None):
        if signal_type not in _SIGNALS:
            raise ValueError(f"signal_type must be one of {sorted(_SIGNALS)}, got {signal_type!r}")
        self._username = username
        self._password = password
        self.base_url = base_url.rstrip("/")
        self.signal_type = signal_type
        self.signal = _SIGNALS[signal_type]
        self.timeout_s = timeout_s
        self.lookback_s = lookback_s
        self.with_forecast = with_forecast
        self.horizon_hours = horizon_hours
        self._token: str | None = None
        self._token_lock = threading.Lock()
        self.logins = 0

    def __repr__(self) -> str:
        return f"WattTimeProvider(base_url={self.base_url!r}, signal_type={self.signal_type!r})"

    def fetch(self, zone: str, now_s: float) -> CarbonReading:
        try:
            params = {} if self.horizon_hours is None else {"horizon_hours": self.horizon_hours}
            forecast = self._points("forecast", zone, params)
            if not forecast:
                raise CarbonProviderError(self.name, f"/v3/forecast returned no point for region {zone!r}",
                                          retryable=True, no_data=True,
                                          hint="the region may not publish a forecast yet")
        except CarbonProviderError as exc:
            return self._from_historical(zone, now_s, exc)
        at_s, g_per_kwh = forecast[0]
        return CarbonReading(zone=zone, g_per_kwh=g_per_kwh, at_s=at_s, source=self.name,
                             signal=self.signal, forecast=tuple(forecast) if self.with_forecast else ())

    def _from_historical(self, zone: str, now_s: float, forecast_error: CarbonProviderError) -> CarbonReading:
        """The fallback when `/v3/forecast` gave nothing: the latest historical point, which may lag."""
        try:
            points = self._points("historical", zone, {
                "start": format_utc(now_s - self.lookback_s), "end": format_utc(now_s)})
        except CarbonProviderError as exc:
            log.debug("watttime historical for %s unavailable too: %s", zone, exc)
            raise forecast_error from None
        past = [p for p in points if p[0] <= now_s]
        if not past:
            raise forecast_error
        at_s, g_per_kwh = past[-1]
        log.warning("watttime forecast for %s unavailable (%s); using /v3/historical, which may lag "
                    "(latest point %.0f s old)", zone, forecast_error, now_s - at_s)
        return CarbonReading(zone=zone, g_per_kwh=g_per_kwh, at_s=at_s, source=f"{self.name}/historical",
                             signal=self.signal,
                             error=f"forecast unavailable, value from /v3/historical (may lag): {forecast_error}")

    def _points(self, endpoint: str, region: str, extra: dict) -> list[tuple[float, float]]:
        doc = self._authorized_get(f"/v3/{endpoint}", {"region": region,
                                                       "signal_type": self.signal_type, **extra})
        meta = field(self.name, doc, "meta", endpoint)
        units = meta.get("units") if isinstance(meta, dict) else None
        if units != "lbs_co2_per_mwh":
            raise shape_error(self.name, f"{endpoint}.meta.units is {units!r}",
                              hint="expected lbs_co2_per_mwh; use signal_type co2_moer or co2_aoer")
        out = []
        for i, point in enumerate(array(self.name, field(self.name, doc, "data", endpoint),
                                        f"{endpoint}.data")):
            where = f"{endpoint}.data[{i}]"
            at_s = timestamp(self.name, field(self.name, point, "point_time", where), where + ".point_time")
            lbs_per_mwh = number(self.name, field(self.name, point, "value", where), where + ".value")
            out.append((at_s, lbs_per_mwh * G_PER_KWH_PER_LB_PER_MWH))
        return sorted(out)

    def _authorized_get(self, path: str, params: dict) -> dict:
        token = self._token or self._login(stale=None)
        for attempt in (1, 2):
            try:
                doc = get_json(self.name, self.base_url + path, params=params,
                               headers={"Authorization": f"Bearer {token}"}, timeout_s=self.timeout_s,
                               auth_hint="the account has no access to this region or signal; "
                                         "check /v3/my-access",
                               not_found_hint=f"check the region {params['region']!r} and base_url")
            except CarbonProviderError as exc:
                if exc.status == 401 and attempt == 1:
                    token = self._login(stale=token)
                    continue
                raise
            if not isinstance(doc, dict):
                raise shape_error(self.name, f"{path} answer is not an object")
            return doc
        raise AssertionError("unreachable")

    def _login(self, stale: str | None) -> str:
        with self._token_lock:
            if self._token is not None and self._token != stale:
                return self._token  # another thread renewed it meanwhile
            doc = get_json(self.name, f"{self.base_url}/login", auth=(self._username, self._password),
                           timeout_s=self.timeout_s,
                           auth_hint="check the WattTime username and password")
            token = doc.get("token") if isinstance(doc, dict) else None
            if not isinstance(token, str) or not token:
                raise shape_error(self.name, "login answer has no token")
            self._token = token
            self.logins += 1
            return token
