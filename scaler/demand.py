"""The demand port: what a ScaledObject's `query` evaluates to at a given time.

Live: a PromQL instant query against Prometheus, evaluated at the refresher's quantised time so
every scaler replica reads the same value. Replay: recorded values per query (the demo). Both
return a `DemandReading` and never raise: a failure is a reading with `ok=False` and a note that
says why, which the refresher turns into a held (untrustworthy) demand.

The live port reads history too (`DemandHistoryPort.read_range`, for the pre-warming forecaster on
start): a range query is the instant query evaluated at every step, so each point is the value a
refresh at that time read (or would have).
"""

from __future__ import annotations

import bisect
import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from wattwise.telemetry.prometheus.connection import PrometheusAuth

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemandReading:
    value: float | None
    ok: bool
    note: str = ""
    unreachable: bool = False   # the source did not answer (down, or timed out): the next query would not either


@runtime_checkable
class DemandPort(Protocol):
    def read(self, query: str, at_s: float) -> DemandReading: ...


@dataclass(frozen=True)
class DemandHistory:
    """A query's values on a step grid: `values[k]` at `times_s[k]`, the query's series summed,
    where `present[k]` (else no series at that step, as an instant read there would have found).
    Failed: `ok=False`, no points, a note that says why."""

    times_s: np.ndarray
    values: np.ndarray
    present: np.ndarray
    ok: bool = True
    note: str = ""
    unreachable: bool = False


@runtime_checkable
class DemandHistoryPort(Protocol):
    def read_range(self, query: str, start_s: float, end_s: float, step_s: float) -> DemandHistory: ...


# what parsing a 200 answer whose result is not samples of [time, "number"] raises: no data, said so
NOT_AN_ANSWER = (ValueError, KeyError, TypeError, IndexError, AttributeError)


class PromQLDemand:
    """Instant queries through `wattwise.telemetry.prometheus.PrometheusClient` (timeouts, bounded
    retries, typed errors; `auth`: credentials, TLS and headers, as the `--prometheus-*` flags give
    them). The query's series are summed; no series means no data."""

    def __init__(self, url: str, timeout_s: float = 5.0, retries: int = 1, auth: PrometheusAuth | None = None):
        from wattwise.telemetry.prometheus import PrometheusClient
        from wattwise.telemetry.prometheus.connection import NO_AUTH

        self._client = PrometheusClient(url, timeout_s=timeout_s, retries=retries, backoff_s=0.1,
                                        auth=auth or NO_AUTH)
        self.url = self._client.url

    def read(self, query: str, at_s: float) -> DemandReading:
        from wattwise.telemetry.prometheus import TelemetryError

        try:
            series = self._client.instant(query, at_s=at_s)
        except (TelemetryError, *NOT_AN_ANSWER) as e:
            return self._failed("instant query", e)
        if not series:
            return DemandReading(None, False, "query returned no series (no data, or none newer than "
                                              "Prometheus's 5-minute lookback)")
        return DemandReading(float(sum(float(s.values[-1]) for s in series)), True)

    def read_range(self, query: str, start_s: float, end_s: float, step_s: float) -> DemandHistory:
        """The query at every step from `start_s` to `end_s`, its series summed per step."""
        from wattwise.telemetry.prometheus import TelemetryError

        n = int(math.floor((end_s - start_s) / step_s + 1e-9)) + 1
        times = start_s + step_s * np.arange(n)
        try:
            series = self._client.range(query, start_s, end_s, step_s)
        except (TelemetryError, *NOT_AN_ANSWER) as e:
            failed = self._failed("range query", e)
            return DemandHistory(np.zeros(0), np.zeros(0), np.zeros(0, dtype=bool), False, failed.note,
                                 failed.unreachable)
        total = np.zeros(n)
        seen = np.zeros(n, dtype=bool)
        for s in series:
            k = np.rint((s.t_s - start_s) / step_s).astype(int)
            on_grid = (k >= 0) & (k < n)
            np.add.at(total, k[on_grid], s.values[on_grid])
            seen[k[on_grid]] = True
        return DemandHistory(times, np.where(seen, total, np.nan), seen)

    def _failed(self, what: str, e: Exception) -> DemandReading:
        """A query that failed, as a reading that says why (`unreachable`: down, or timed out)."""
        from wattwise.telemetry.prometheus import PrometheusTimeout, PrometheusUnavailable

        if isinstance(e, NOT_AN_ANSWER):
            return DemandReading(None, False, f"Prometheus at {self.url}: {what} returned something that is "
                                              f"not a Prometheus API answer ({type(e).__name__}: {str(e)[:120]})")
        return DemandReading(None, False, str(e), unreachable=isinstance(e, (PrometheusUnavailable, PrometheusTimeout)))

    def close(self) -> None:
        self._client.close()


class RecordedDemand:
    """Replays recorded values: query -> ((t_s, value), ...) sorted by time; the value at `at_s`
    is the latest point at or before it (the first point before the recording starts)."""

    def __init__(self, series: Mapping[str, Sequence[tuple[float, float]]]):
        self._t = {q: [t for t, _ in sorted(points)] for q, points in series.items()}
        self._v = {q: [v for _, v in sorted(points)] for q, points in series.items()}

    def read(self, query: str, at_s: float) -> DemandReading:
        times = self._t.get(query)
        if not times:
            return DemandReading(None, False, "no recorded data for this query")
        i = max(0, bisect.bisect_right(times, at_s) - 1)
        return DemandReading(self._v[query][i], True)


def check_plausible(reading: DemandReading, max_value: float) -> DemandReading:
    """Absurd values (negative, NaN, infinite, above `max_value`) are not trusted."""
    if not reading.ok or reading.value is None:
        return reading
    v = reading.value
    if not math.isfinite(v) or v < 0 or v > max_value:
        return DemandReading(None, False, f"implausible value {v!r} (accepted: 0 to {max_value:g})")
    return reading
