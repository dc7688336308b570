"""The core's `CarbonIntensitySource` port over any provider: cache with a TTL, bounded waits,
and stale-then-default fallback. It never raises and never blocks a decision for long."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, replace

from wattwise.models.ports import CarbonReading, CarbonStatus
from wattwise.telemetry.carbon.errors import CarbonProviderError
from wattwise.telemetry.carbon.provider import CarbonProvider

log = logging.getLogger(__name__)


@dataclass
class _ZoneState:
    reading: CarbonReading | None = None  # last good reading
    fetched_at_s: float = -math.inf  # clock time of the last good fetch
    consecutive_failures: int = 0
    last_error: str = ""
    next_attempt_s: float = -math.inf  # backoff after a failure
    in_flight: Future | None = None


class CachedCarbonSource:
    """Serve `provider` readings per zone: "fresh" right after a fetch, "cached" within `ttl_s`
    of it; after `ttl_s` a refresh is tried. When the provider fails (error, or no answer within
    `refresh_timeout_s`), the last good value is served as "stale" with its `age_s` and the error,
    for at most `max_stale_s`; then, or when nothing was ever fetched, `default_g_per_kwh` as
    "default". Every failure is logged, counted (`stats()`) and shown in the reading's `error`.

    Inline mode (default): the call that finds the cache expired starts a fetch in a worker thread
    and waits at most `refresh_timeout_s`; a fetch still running answers later into the cache, and
    calls meanwhile do not wait. After a failure no new fetch starts before a backoff
    (doubling from `failure_backoff_s` up to `ttl_s`, or the server's Retry-After).

    Background mode (`background_interval_s` set): a daemon thread refreshes every known zone
    (`zones`, plus each zone asked for) when due; `intensity()` only reads memory. The thread
    starts with `start()` or on the first `intensity()` call; `close()` stops it.

    `clock` (epoch seconds, default `time.time`) drives TTL, ages and backoff; `now_s` of
    `intensity()` is handed to the provider (it selects the trace point of a CSV replay).
    """

    def __init__(self, provider: CarbonProvider, ttl_s: float, default_g_per_kwh: float, *,
                 clock: Callable[[], float] = time.time, refresh_timeout_s: float = 2.0,
                 max_stale_s: float = 6 * 3600.0, failure_backoff_s: float = 5.0,
                 background_interval_s: float | None = None, zones: Iterable[str] = (),
                 max_workers: int = 4):
        if ttl_s < 0 or refresh_timeout_s <= 0 or max_stale_s < 0 or failure_backoff_s < 0:
            raise ValueError("ttl_s, max_stale_s, failure_backoff_s must be >= 0 and "
                             "refresh_timeout_s > 0")
        if not (math.isfinite(default_g_per_kwh) and default_g_per_kwh >= 0):
            raise ValueError(f"default_g_per_kwh must be finite and >= 0, got {default_g_per_kwh}")
        if background_interval_s is not None and background_interval_s <= 0:
            raise ValueError("background_interval_s must be > 0 (or None for inline refresh)")
        self.provider = provider
        self.ttl_s = ttl_s
        self.default_g_per_kwh = default_g_per_kwh
        self.refresh_timeout_s = refresh_timeout_s
        self.max_stale_s = max_stale_s
        self.failure_backoff_s = failure_backoff_s
        self.background_interval_s = background_interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._states: dict[str, _ZoneState] = {zone: _ZoneState() for zone in zones}
        self._counters = {"fetches": 0, "failures": 0, "timeouts": 0, "internal_errors": 0}
        self._executor = ThreadPoolExecutor(max_workers=max_workers,
                                            thread_name_prefix=f"carbon-{provider.name}")
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"CachedCarbonSource({self.provider!r}, ttl_s={self.ttl_s})"

    # --- the port -------------------------------------------------------------------------

    def intensity(self, zone: str, now_s: float) -> CarbonReading:
        try:
            return self._intensity(zone, now_s)
        except Exception as exc:  # the port must not raise; this is a bug, so shout about it
            log.exception("carbon source %s failed internally for zone %s", self.provider.name, zone)
            with self._lock:
                self._counters["internal_errors"] += 1
            return self._default(zone, now_s, f"internal error: {type(exc).__name__}: {exc}")

    def _intensity(self, zone: str, now_s: float) -> CarbonReading:
        background = self.background_interval_s is not None
        if background:
            self.start()
        t_s = self._clock()
        with self._lock:
            state = self._states.get(zone)
            if state is None:
                state = self._states[zone] = _ZoneState()
                if background:
                    self._wake.set()
            if state.reading is not None and t_s - state.fetched_at_s < self.ttl_s:
                return self._cached(state, t_s)
            if background or state.in_flight is not None or t_s < state.next_attempt_s:
                return self._fallback(zone, state, t_s, now_s)
            future = state.in_flight = self._executor.submit(self._refresh, zone, now_s)
        try:
            succeeded = future.result(timeout=self.refresh_timeout_s)
        except FutureTimeout:
            with self._lock:
                self._counters["timeouts"] += 1
                state.last_error = (f"{self.provider.name}: no answer within "
                                    f"{self.refresh_timeout_s:g} s (refresh continues in the background)")
            log.warning("carbon provider %s: zone %s not refreshed within %s s", self.provider.name,
                        zone, self.refresh_timeout_s)
            succeeded = False
        with self._lock:
            if succeeded and state.reading is not None:
                return state.reading
            return self._fallback(zone, state, self._clock(), now_s)

    # --- refresh --------------------------------------------------------------------------

    def _refresh(self, zone: str, now_s: float) -> bool:
        """Fetch once and record the outcome; never raises. True when a value was stored."""
        try:
            reading = self.provider.fetch(zone, now_s)
        except Exception as exc:  # recorded, counted, logged and shown on the readings
            self._record_failure(zone, exc)
            return False
        with self._lock:
            state = self._states.setdefault(zone, _ZoneState())
            state.in_flight = None
            recovered = state.consecutive_failures
            state.reading, state.fetched_at_s = reading, self._clock()
            state.consecutive_failures, state.last_error = 0, ""
            state.next_attempt_s = -math.inf
            self._counters["fetches"] += 1
        if recovered:
            log.info("carbon provider %s recovered for zone %s after %s failures",
                     self.provider.name, zone, recovered)
        return True

    def _record_failure(self, zone: str, exc: Exception) -> None:
        no_data = isinstance(exc, CarbonProviderError) and exc.no_data
        if isinstance(exc, CarbonProviderError):
            text, retryable, retry_after_s = str(exc), exc.retryable, exc.retry_after_s
        else:
            text = f"{self.provider.name}: unexpected {type(exc).__name__}: {exc}"
            retryable, retry_after_s = True, None
        with self._lock:
            state = self._states.setdefault(zone, _ZoneState())
            state.in_flight = None
            state.consecutive_failures += 1
            state.last_error = text
            self._counters["failures"] += 1
            failures = state.consecutive_failures
            if retryable:
                delay_s = min(max(self.ttl_s, self.failure_backoff_s),
                              self.failure_backoff_s * 2 ** (failures - 1))
            else:
                delay_s = max(self.ttl_s, self.failure_backoff_s)
            delay_s = max(delay_s, retry_after_s or 0.0)
            state.next_attempt_s = self._clock() + delay_s
        if failures > 1:
            level = logging.DEBUG
        else:  # "no data yet for this zone and hour" is the provider working as documented
            level = logging.INFO if no_data else logging.WARNING
        what = "has no data yet" if no_data else "failed"
        log.log(level, "carbon provider %s %s for zone %s (%s in a row, next try in %.0f s; serving "
                "the last value as stale, else the default): %s", self.provider.name, what, zone,
                failures, delay_s, text, exc_info=not isinstance(exc, CarbonProviderError))

    # --- what to serve --------------------------------------------------------------------

    def _cached(self, state: _ZoneState, t_s: float) -> CarbonReading:
        reading = state.reading
        assert reading is not None
        status = CarbonStatus.CACHED if reading.status is CarbonStatus.FRESH else reading.status
        return replace(reading, status=status, age_s=max(0.0, t_s - state.fetched_at_s))

    def _fallback(self, zone: str, state: _ZoneState, t_s: float, now_s: float) -> CarbonReading:
        if state.consecutive_failures:
            why = f"{state.consecutive_failures} failure(s) in a row, last: {state.last_error}"
        elif state.last_error:
            why = state.last_error
        elif state.in_flight is not None:
            why = f"{self.provider.name}: refresh in progress"
        else:
            why = f"{self.provider.name}: no value fetched yet (background refresh pending)"
        if state.reading is not None:
            age_s = max(0.0, t_s - state.fetched_at_s)
            if age_s <= self.max_stale_s:
                return replace(state.reading, status=CarbonStatus.STALE, age_s=age_s,
                               error=f"{why}; serving the value fetched {age_s:.0f} s ago")
            why += f"; last value is {age_s:.0f} s old, beyond max_stale_s={self.max_stale_s:g}"
        return self._default(zone, now_s, why)

    def _default(self, zone: str, now_s: float, why: str) -> CarbonReading:
        return CarbonReading(zone=zone, g_per_kwh=self.default_g_per_kwh, at_s=float(now_s),
                             source=self.provider.name, signal=self.provider.signal,
                             status=CarbonStatus.DEFAULT,
                             error=f"{why}; serving the configured default "
                                   f"{self.default_g_per_kwh:g} g/kWh")

    # --- background mode and lifecycle ----------------------------------------------------

    def start(self) -> None:
        """Start the background refresh thread (background mode only; idempotent)."""
        if self.background_interval_s is None:
            raise RuntimeError("start() needs background_interval_s; inline mode has no thread")
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(target=self._loop, daemon=True,
                                            name=f"carbon-refresh-{self.provider.name}")
        self._thread.start()

    def refresh_due(self) -> int:
        """Refresh, synchronously, every known zone whose TTL expired and whose backoff is over.
        Returns how many were fetched successfully. The background thread calls this."""
        t_s = self._clock()
        with self._lock:
            due = [zone for zone, s in self._states.items()
                   if s.in_flight is None and t_s >= s.next_attempt_s
                   and (s.reading is None or t_s - s.fetched_at_s >= self.ttl_s)]
        return sum(self._refresh(zone, self._clock()) for zone in due)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh_due()
            except Exception:  # refresh_due does not raise; if it does, keep the thread alive
                log.exception("carbon background refresh loop error")
                with self._lock:
                    self._counters["internal_errors"] += 1
            self._wake.wait(self.background_interval_s)
            self._wake.clear()

    def close(self) -> None:
        """Stop the background thread and the workers (a fetch in progress is abandoned)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        self._executor.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> CachedCarbonSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def stats(self) -> dict[str, int]:
        """Counters: fetches (successful), failures, timeouts, internal_errors."""
        with self._lock:
            return dict(self._counters)
