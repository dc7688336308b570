"""Ports: the small interfaces through which every input reaches the core.

Each has a live implementation (Prometheus, Kubernetes API, carbon providers: `wattwise.telemetry`,
`wattwise.scheduler`) and a replay implementation (`wattwise.simulations`). The core only sees
these values, never a client.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

import pandas as pd

from wattwise.models.cluster import Node, NodeClass


class CarbonSignal(StrEnum):
    """Which kind of carbon intensity: they give different savings and must not be mixed silently."""
    AVERAGE = "average"    # location-based: Electricity Maps, the UK Carbon Intensity API
    MARGINAL = "marginal"  # the generator that answers a change in load: WattTime's MOER


class CarbonStatus(StrEnum):
    """How far a reading can be trusted."""
    FRESH = "fresh"        # just fetched
    CACHED = "cached"      # served from the cache within its TTL
    STALE = "stale"        # the provider failed: the last known value, `age_s` old
    DEFAULT = "default"    # the provider failed and nothing is known: the configured conservative default

    @property
    def trustworthy(self) -> bool:
        return self in (CarbonStatus.FRESH, CarbonStatus.CACHED)


@dataclass(frozen=True)
class CarbonReading:
    """Grid carbon intensity for a zone: what kind (`signal`), how far to trust it (`status`, with
    the reason in `error`), and (at_s, g_per_kwh) pairs in `forecast` when the provider gives one.
    `signal` and `status` also take their values as plain strings ("average", "stale", ...).
    """

    zone: str
    g_per_kwh: float
    at_s: float
    source: str
    signal: CarbonSignal = CarbonSignal.AVERAGE
    status: CarbonStatus = CarbonStatus.FRESH
    age_s: float = 0.0
    error: str = ""
    forecast: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "signal", CarbonSignal(self.signal))
        object.__setattr__(self, "status", CarbonStatus(self.status))

    @property
    def trustworthy(self) -> bool:
        return self.status.trustworthy


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


@dataclass(frozen=True)
class ReplicaSample:
    """One WattWise replica now: what it delivered and dropped (frames/s over the application's
    window, the reference pipeline's `infer_fps` and `drop_fps`) and, when known, what it was asked for.
    `node_class` when the source knows it; else the reader finds it from `node`."""

    workload: str                       # namespace/name
    node: str
    delivered_fps: float
    drop_fps: float = 0.0
    requested_fps: float | None = None
    node_class: str | None = None
    pod: str = ""                       # namespace/name of the pod, for reports


@runtime_checkable
class ReplicaFpsSource(Protocol):
    """Per running WattWise replica at `at_s`, its delivered and dropped FPS. Raises when the
    samples cannot be read or are absent (the error says why); the reader reports it and corrects
    nothing."""

    def read(self, at_s: float) -> list[ReplicaSample]: ...
