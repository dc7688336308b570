"""What a raw carbon provider offers: one fetch that either returns a fresh reading or raises."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from wattwise.models.ports import CarbonReading

SIGNALS = ("average", "marginal")


@runtime_checkable
class CarbonProvider(Protocol):
    """A single source of grid carbon intensity, without caching or fallback.

    `fetch` returns a reading with status "fresh" or raises `CarbonProviderError`; it may block
    up to the provider's own timeout. `CachedCarbonSource` turns a provider into the core's
    `CarbonIntensitySource` port, which never raises and never blocks a decision.
    """

    name: str
    signal: str

    def fetch(self, zone: str, now_s: float) -> CarbonReading: ...


def check_signal(signal: str) -> str:
    if signal not in SIGNALS:
        raise ValueError(f"signal must be one of {SIGNALS}, got {signal!r}")
    return signal
