"""Ports: the small interfaces through which every input reaches the core.

Each has a live implementation (Prometheus, Kubernetes API, carbon providers: `wattwise.telemetry`,
`wattwise.scheduler`) and a replay implementation (`wattwise.simulations`). The core only sees
these values, never a client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import pandas as pd

from wattwise.models.cluster import Node, NodeClass


@dataclass(frozen=True)
class CarbonReading:
    """Grid carbon intensity for a zone.

    `signal` says which kind: "average" (location-based, e.g. Electricity Maps, UK API) or
    "marginal" (e.g. WattTime MOER); they give different savings and must not be mixed silently.
    `status` is "fresh", "cached" (served from cache within TTL), "stale" (provider failed: the
    last known value, `age_s` old) or "default" (provider failed and nothing known: the configured
    conservative default). `forecast` holds (at_s, g_per_kwh) pairs when the provider gives one.
    """

    zone: str
    g_per_kwh: float
    at_s: float
    source: str
    signal: str = "average"
    status: str = "fresh"
    age_s: float = 0.0
    error: str = ""
    forecast: tuple[tuple[float, float], ...] = ()

    @property
    def trustworthy(self) -> bool:
        return self.status in ("fresh", "cached")


@runtime_checkable
class CarbonIntensitySource(Protocol):
    """Never blocks a decision: on failure it returns the last value or a default, marked so."""

    def intensity(self, zone: str, now_s: float) -> CarbonReading: ...


@runtime_checkable
class NodeInventory(Protocol):
    def node_classes(self) -> dict[str, NodeClass]: ...

    def nodes(self) -> list[Node]: ...


# Columns of the frame returned by `PowerFpsSource.samples`, one row per pod and timestamp.
SAMPLE_COLUMNS = ("t_s", "workload", "pod", "node", "node_class", "power_w", "fps", "drop_fps")


@runtime_checkable
class PowerFpsSource(Protocol):
    """Per-pod power (W, from Kepler) and delivered FPS (from the application), aligned in time."""

    def samples(self, start_s: float, end_s: float, step_s: float) -> pd.DataFrame: ...
