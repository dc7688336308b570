"""A thin wrapper over prometheus-api-client's `PrometheusConnect`.

What it adds: a timeout on every query (both the HTTP read and Prometheus's own evaluation
timeout), bounded retries (connection failures and 429/502/504 only; a timed-out query is not
retried, which would only add to the load that made it slow: Prometheus answers its own query
timeout with 503 and `errorType: timeout`, so 503 is not retried but told apart), range queries
split into chunks under Prometheus's limit of 11,000 points per series, one typed error per
failure mode, an answer with `warnings` (partial data: a Thanos store or remote read that did not
answer) refused as `PrometheusPartialAnswer` rather than taken as the whole, and counters of
requests and bytes for capacity planning. Credentials, TLS trust and extra headers
come from one `PrometheusAuth` (`connection.py`), the same for every client a command makes.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

import numpy as np
import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from urllib3.util.retry import Retry

from wattwise.telemetry.prometheus.connection import FLAGS, NO_AUTH, PrometheusAuth
from wattwise.telemetry.prometheus.errors import (PrometheusPartialAnswer, PrometheusQueryError, PrometheusTimeout,
                                                  PrometheusUnavailable, TelemetryError)

log = logging.getLogger(__name__)

# Prometheus rejects range queries over 11,000 points per series; stay well below.
MAX_POINTS_PER_QUERY = 10_000
RETRY_ON_STATUS = (429, 502, 504)    # not 503: Prometheus's own query timeout (see the module notes)


@dataclass(frozen=True)
class Series:
    """One time series as returned by Prometheus: its labels, timestamps (s) and values."""

    labels: dict[str, str]
    t_s: np.ndarray
    values: np.ndarray


@dataclass
class RequestStats:
    requests: int = 0
    bytes_received: int = 0
    failures: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


def plan_chunks(start_s: float, end_s: float, step_s: float,
                max_points: int = MAX_POINTS_PER_QUERY) -> list[tuple[float, float]]:
    """Split [start_s, end_s] into consecutive ranges of at most `max_points` steps each.

    Chunks are aligned on the step grid starting at `start_s` and do not overlap, so joining
    their results gives every point exactly once.
    """
    if step_s <= 0:
        raise ValueError(f"step_s must be positive, got {step_s}")
    if end_s < start_s:
        raise ValueError(f"end_s {end_s} is before start_s {start_s}")
    if max_points < 1:
        raise ValueError("max_points must be at least 1")
    n_points = int(math.floor((end_s - start_s) / step_s + 1e-9)) + 1
    chunks = []
    for first in range(0, n_points, max_points):
        last = min(first + max_points, n_points) - 1
        chunks.append((start_s + first * step_s, start_s + last * step_s))
    return chunks


def _to_datetime(t_s: float) -> datetime:
    return datetime.fromtimestamp(t_s, tz=timezone.utc)


def _warnings(content: bytes) -> list[str]:
    """The `warnings` of a Prometheus API answer (not its `infos`, which are hints about the query)."""
    try:
        doc = json.loads(content)
    except ValueError:
        return []
    found = doc.get("warnings") if isinstance(doc, dict) else None
    return [str(w) for w in found] if isinstance(found, list) else []


def _error_type(exc: PrometheusApiClientException) -> str:
    """The `errorType` of the Prometheus API error body in the client's message ("" if none)."""
    m = re.search(r'"errorType"\s*:\s*"([^"]*)"', str(exc))
    return m.group(1) if m else ""


def _status_and_reason(exc: PrometheusApiClientException) -> tuple[int | None, str]:
    """prometheus-api-client puts the status and body into its message; take them back out."""
    text = str(exc)
    m = re.search(r"HTTP Status Code (\d+) \((.*)\)$", text, re.S)
    if not m:
        return None, text
    status, body = int(m.group(1)), m.group(2)
    reason = body
    inner = re.search(r"\{.*\}", body, re.S)
    if inner:
        try:
            reason = json.loads(inner.group(0).encode().decode("unicode_escape")).get("error", body)
        except (ValueError, AttributeError):
            reason = body
    return status, reason


class PrometheusClient:
    """Queries one Prometheus. All failures surface as `TelemetryError` subclasses."""

    def __init__(self, url: str, timeout_s: float = 30.0, retries: int = 2, backoff_s: float = 0.2,
                 max_points: int = MAX_POINTS_PER_QUERY, headers: dict | None = None,
                 disable_ssl: bool = False, auth: PrometheusAuth = NO_AUTH):
        if not re.match(r"^https?://", url or ""):
            raise PrometheusQueryError(f"--prometheus {url!r}: expected an http:// or https:// URL")
        self.url = url.rstrip("/")
        self.timeout_s = float(timeout_s)
        self.max_points = max_points
        self.stats = RequestStats()
        retry = Retry(total=retries, connect=retries, read=0, status=retries, other=0,
                      backoff_factor=backoff_s, status_forcelist=RETRY_ON_STATUS,
                      allowed_methods=frozenset({"GET", "POST"}), raise_on_status=True,
                      respect_retry_after_header=False)  # a Retry-After of an hour must not stall us
        self.auth = auth
        session = auth.apply(requests.Session())
        if disable_ssl:
            session.verify = False
        session.hooks["response"].append(self._count_response)
        # headers=None: PrometheusConnect then sends the session's (the auth's) headers with each call
        self._prom = PrometheusConnect(url=self.url, headers=headers, retry=retry, session=session,
                                       timeout=self.timeout_s)

    def close(self) -> None:
        self._prom.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _count_response(self, response, *args, **kwargs):
        self.stats.requests += 1
        content = response.content or b""
        self.stats.bytes_received += len(content)
        if response.status_code == 200 and b'"warnings"' in content:   # rare: parse only then
            warnings = _warnings(content)
            if warnings:
                raise PrometheusPartialAnswer(
                    f"Prometheus at {self.url} answered with warnings, so its data may be partial: "
                    f"{'; '.join(warnings)[:300]} (a store or remote read did not answer? read as missing)")

    def _params(self) -> dict:
        # whole milliseconds: Prometheus reads "7500ms" (or "7.5"), but refuses "7.5s"
        return {"timeout": f"{max(1, round(self.timeout_s * 1000))}ms"}

    def _call(self, what: str, fn: Callable):
        try:
            return fn()
        except TelemetryError as err:    # raised by the response hook: a partial answer
            self.stats.failures += 1
            self.stats.by_kind[type(err).__name__] = self.stats.by_kind.get(type(err).__name__, 0) + 1
            raise
        except Exception as exc:  # noqa: BLE001 - every client failure becomes one typed error
            self.stats.failures += 1
            err = self._translate(what, exc)
            self.stats.by_kind[type(err).__name__] = self.stats.by_kind.get(type(err).__name__, 0) + 1
            raise err from exc

    def _translate(self, what: str, exc: Exception) -> TelemetryError:
        where = f"Prometheus at {self.url}"
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return PrometheusUnavailable(f"{where}: connection timed out; check the URL and that Prometheus is running")
        if isinstance(exc, requests.exceptions.Timeout) or "Read timed out" in str(exc):
            return PrometheusTimeout(f"{where}: {what} took longer than {self.timeout_s:g}s; "
                                     "raise --timeout or shorten the range")
        if isinstance(exc, requests.exceptions.SSLError) or _tls_reason(exc):
            return PrometheusUnavailable(f"{where}: TLS failed ({_tls_reason(exc) or 'handshake'}); check "
                                         f"{FLAGS['ca_file']} (the CA that signed Prometheus's certificate) and, "
                                         f"where Prometheus asks for one, {FLAGS['cert_file']}/{FLAGS['key_file']}")
        if isinstance(exc, requests.exceptions.RetryError):
            return PrometheusUnavailable(f"{where}: {what} kept failing after bounded retries ({_short(exc)}); "
                                         "Prometheus is overloaded or restarting, try again later")
        if isinstance(exc, requests.exceptions.ConnectionError):
            return PrometheusUnavailable(f"{where}: unreachable ({_short(exc)}); check the URL and that "
                                         "Prometheus is running")
        if isinstance(exc, PrometheusApiClientException):
            status, reason = _status_and_reason(exc)
            if status == 503 and _error_type(exc) in ("timeout", "canceled"):
                return PrometheusTimeout(f"{where}: {what} hit Prometheus's query timeout ({reason}); raise "
                                         "--timeout or Prometheus's --query.timeout, or shorten the range")
            if status == 503:
                return PrometheusUnavailable(f"{where}: {what} refused with HTTP 503 ({reason})")
            if status == 401:
                return PrometheusQueryError(
                    f"{where}: {what} refused with HTTP 401 ({_body(reason)}); credentials sent: "
                    f"{self.auth.credentials()} (check {FLAGS['bearer_token_file']}, or {FLAGS['basic_auth_user']} "
                    f"and {FLAGS['basic_auth_password_file']})", status)
            if status == 403:
                return PrometheusQueryError(
                    f"{where}: {what} refused with HTTP 403 ({_body(reason)}); credentials sent: "
                    f"{self.auth.credentials()} (they are not allowed to query: check their permissions, "
                    "e.g. the RBAC of a kube-rbac-proxy in front of Prometheus)", status)
            return PrometheusQueryError(f"{where}: {what} failed with HTTP {status}: {reason}", status)
        if isinstance(exc, (ValueError, KeyError, TypeError)):
            return PrometheusQueryError(f"{where}: {what} returned something that is not a Prometheus API "
                                        f"answer ({type(exc).__name__}); is the URL a Prometheus server?")
        if isinstance(exc, requests.exceptions.RequestException):
            return PrometheusUnavailable(f"{where}: request failed ({_short(exc)})")
        return TelemetryError(f"{where}: {what} failed unexpectedly ({type(exc).__name__}: {exc})")

    # -- queries -----------------------------------------------------------------------------

    def instant(self, query: str, at_s: float | None = None) -> list[Series]:
        params = self._params()
        if at_s is not None:
            params["time"] = f"{at_s:.3f}"
        log.debug("instant query %s at %s", query, at_s)
        result = self._call("instant query", lambda: self._prom.custom_query(query, params=params,
                                                                             timeout=self.timeout_s))
        return [_instant_series(r) for r in result]

    def range(self, query: str, start_s: float, end_s: float, step_s: float,
              on_chunk: Callable[[], None] | None = None) -> list[Series]:
        """A range query, chunked; series with the same labels are joined across chunks."""
        merged: dict[tuple, list[Series]] = {}
        for a, b in plan_chunks(start_s, end_s, step_s, self.max_points):
            log.debug("range query %s [%s, %s] step %ss", query, a, b, step_s)
            result = self._call("range query", lambda a=a, b=b: self._prom.custom_query_range(
                query, _to_datetime(a), _to_datetime(b), f"{step_s:g}", params=self._params(),
                timeout=self.timeout_s))
            for r in result:
                s = _range_series(r)
                merged.setdefault(tuple(sorted(s.labels.items())), []).append(s)
            if on_chunk:
                on_chunk()
        return [Series(parts[0].labels, np.concatenate([p.t_s for p in parts]),
                       np.concatenate([p.values for p in parts])) for parts in merged.values()]

    def metric_names(self, match: str, start_s: float | None = None, end_s: float | None = None) -> list[str]:
        """Names of metrics matching a series selector (e.g. '{__name__=~"kepler_.+"}') in a range."""
        params = {"match[]": match}
        if start_s is not None:
            params["start"] = f"{start_s:.3f}"
        if end_s is not None:
            params["end"] = f"{end_s:.3f}"
        return list(self._call("metric name lookup", lambda: self._prom.get_label_values("__name__", params=params)))

    def ready(self) -> bool:
        """True when Prometheus answers; raises PrometheusUnavailable when it cannot be reached."""
        return bool(self._call("readiness check", lambda: self._prom.check_prometheus_connection()))


def _short(exc: Exception) -> str:
    text = str(exc)
    for pattern in (r"Connection refused", r"Name or service not known", r"Connection reset by peer",
                    r"Remote end closed connection without response", r"too many \d+ error responses",
                    r"Max retries exceeded"):
        m = re.search(pattern, text)
        if m:
            return m.group(0)
    return text[:160] + ("..." if len(text) > 160 else "")


def _body(reason: str) -> str:
    """An error body as prometheus-api-client quotes it (b'Unauthorized\\n'), as text, short."""
    m = re.match(r"^b(['\"])(.*)\1$", reason.strip(), re.S)
    text = (m.group(2) if m else reason).replace("\\n", " ").strip()
    return _short(Exception(text)) or "no reason given"


def _tls_reason(exc: Exception) -> str | None:
    """The TLS failure in a requests error, in OpenSSL's words (e.g. "certificate verify failed:
    unable to get local issuer certificate", "tlsv13 alert certificate required"), else None."""
    m = re.search(r"\[SSL: [A-Z0-9_]+\] ([^(\]]+?)\s*\(_ssl\.c", str(exc))
    return m.group(1) if m else None


def _instant_series(r: dict) -> Series:
    t, v = r["value"]
    return Series(dict(r.get("metric", {})), np.array([float(t)]), np.array([float(v)]))


def _range_series(r: dict) -> Series:
    values = r.get("values") or []
    arr = np.array([(float(t), float(v)) for t, v in values], dtype=float).reshape(-1, 2)
    return Series(dict(r.get("metric", {})), arr[:, 0], arr[:, 1])
