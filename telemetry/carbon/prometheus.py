"""A carbon-intensity gauge in Prometheus, read with one instant query over the HTTP API."""

from __future__ import annotations

import requests

from wattwise.models.ports import CarbonReading
from wattwise.telemetry.carbon.errors import CarbonProviderError
from wattwise.telemetry.carbon.http_json import get_json
from wattwise.telemetry.carbon.parsing import array, field, number, shape_error, timestamp
from wattwise.telemetry.carbon.provider import check_signal
from wattwise.telemetry.prometheus.connection import NO_AUTH, CredentialFileError, PrometheusAuth


_KEYS = {"bearer_token_file": "carbon.bearer_token_file",
         "basic_auth_password_file": "carbon.basic_auth_password_file"}   # named when a file cannot be read


class PrometheusCarbonProvider:
    """`GET {base}/api/v1/query?query=&time=` -> {status, data: {resultType: vector, result:
    [{metric, value: [ts, "str"]}]}}; the series whose `zone_label` equals the zone is used
    (the newest sample if several match). Errors arrive as {status: "error", errorType, error}.
    The gauge must already be in g/kWh; `signal` says what it measures. `auth`: credentials, TLS
    and headers as every WattWise Prometheus client takes them (the token or password file is read
    again when it changes)."""

    name = "prometheus"

    def __init__(self, base_url: str, query: str, *, zone_label: str = "zone",
                 signal: str = "average", timeout_s: float = 5.0, bearer_token: str | None = None,
                 auth: PrometheusAuth = NO_AUTH):
        self.base_url = base_url.rstrip("/")
        self.query = query
        self.zone_label = zone_label
        self.signal = check_signal(signal)
        self.timeout_s = timeout_s
        self._bearer_token = bearer_token
        self._auth = auth

    def __repr__(self) -> str:
        return f"PrometheusCarbonProvider(base_url={self.base_url!r}, query={self.query!r})"

    def fetch(self, zone: str, now_s: float) -> CarbonReading:
        headers = {"Authorization": f"Bearer {self._bearer_token}"} if self._bearer_token else {}
        try:
            with self._auth.apply(requests.Session(), flags=_KEYS) as session:
                doc = get_json(self.name, f"{self.base_url}/api/v1/query",
                               params={"query": self.query, "time": f"{now_s:.3f}"}, headers=headers,
                               timeout_s=self.timeout_s, session=session,
                               auth_hint="check the Prometheus credentials (bearer_token, bearer_token_file or "
                                         "basic_auth_user and basic_auth_password_file)",
                               not_found_hint="check base_url (it should end before /api/v1)")
        except CredentialFileError as e:
            raise CarbonProviderError(self.name, str(e), retryable=True) from None
        if field(self.name, doc, "status", "answer") != "success":
            raise CarbonProviderError(self.name, f"query failed: {doc.get('errorType')}: {doc.get('error')}",
                                      retryable=False, hint="check the carbon query")
        data = field(self.name, doc, "data", "answer")
        if field(self.name, data, "resultType", "data") != "vector":
            raise shape_error(self.name, f"resultType is {data.get('resultType')!r}",
                              hint="the carbon query must return an instant vector")
        samples = []
        for i, series in enumerate(array(self.name, field(self.name, data, "result", "data"),
                                         "data.result")):
            metric = field(self.name, series, "metric", f"data.result[{i}]")
            if not isinstance(metric, dict) or metric.get(self.zone_label) != zone:
                continue
            value = field(self.name, series, "value", f"data.result[{i}]")
            if not isinstance(value, list) or len(value) != 2:
                raise shape_error(self.name, f"data.result[{i}].value is not [ts, value]")
            samples.append((timestamp(self.name, value[0], f"data.result[{i}].value[0]"),
                            number(self.name, value[1], f"data.result[{i}].value[1]")))
        if not samples:
            raise CarbonProviderError(
                self.name, f"no series with {self.zone_label}={zone!r} in the result of {self.query!r}",
                retryable=True, hint=f"check zone_label and that the exporter publishes zone {zone!r}")
        at_s, g_per_kwh = max(samples)
        return CarbonReading(zone=zone, g_per_kwh=g_per_kwh, at_s=at_s, source=self.name,
                             signal=self.signal)
