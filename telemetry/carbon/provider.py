"""What a raw carbon provider offers: one fetch that either returns a fresh reading or raises."""

from __future__ import annotations

import logging
from typing import Callable, Protocol, runtime_checkable

from wattwise.models.ports import CarbonReading, CarbonSignal
from wattwise.telemetry.carbon.errors import CarbonProviderError

log = logging.getLogger(__name__)

SIGNALS = tuple(s.value for s in CarbonSignal)


@runtime_checkable
class CarbonProvider(Protocol):
    """A single source of grid carbon intensity, without caching or fallback.

    `fetch` returns a fresh reading (`CarbonStatus.FRESH`) or raises `CarbonProviderError`; it may block
    up to the provider's own timeout. `CachedCarbonSource` turns a provider into the core's
    `CarbonIntensitySource` port, which never raises and never blocks a decision.
    """

    name: str
    signal: CarbonSignal

    def fetch(self, zone: str, now_s: float) -> CarbonReading: ...


def check_signal(signal: str) -> CarbonSignal:
    if signal not in SIGNALS:
        raise ValueError(f"signal must be one of {SIGNALS}, got {signal!r}")
    return CarbonSignal(signal)


def reading_with_forecast(provider: CarbonProvider, zone: str, g_per_kwh: float, at_s: float,
                          forecast: Callable[[], tuple[tuple[float, float], ...]] | None) -> CarbonReading:
    """A fresh reading, with the provider's forecast when one is asked for (`forecast` given).
    A failed forecast does not fail the reading: it is logged and named in `error`."""
    points: tuple[tuple[float, float], ...] = ()
    error = ""
    if forecast is not None:
        try:
            points = forecast()
        except CarbonProviderError as exc:
            log.warning("%s forecast for %s unavailable: %s", provider.name, zone, exc)
            error = f"forecast unavailable: {exc}"
    return CarbonReading(zone=zone, g_per_kwh=g_per_kwh, at_s=at_s, source=provider.name,
                         signal=provider.signal, error=error, forecast=points)
