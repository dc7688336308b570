"""The replica FPS port's replay implementation, and what the refresher holds of capacity learned
from drops (the rule and its keeping are the core's: `models.capacity_correction`,
`models.capacity_held`; re-exported here for the scaler's modules).

`StaticReplicaFps` is the replay implementation of the port (tests, a recorded run).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from wattwise.models.capacity_held import CapacityCorrections, HeldCorrection, KeepSettings, Pair, replica_rates
from wattwise.models.ports import ReplicaSample

__all__ = ["CapacityCorrections", "HeldCorrection", "KeepSettings", "Pair", "StaticReplicaFps", "replica_rates"]


class StaticReplicaFps:
    """Samples a test or a replay sets; `error`, when set, is raised by `read` (a failing source)."""

    def __init__(self, samples: Iterable[ReplicaSample] = ()):
        self._lock = threading.Lock()
        self._samples = list(samples)
        self.error: Exception | None = None

    def set(self, samples: Iterable[ReplicaSample]) -> None:
        with self._lock:
            self._samples = list(samples)

    def read(self, at_s: float) -> list[ReplicaSample]:
        if self.error is not None:
            raise self.error
        with self._lock:
            return list(self._samples)
