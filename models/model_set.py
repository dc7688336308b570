"""The energy models a plan uses, as one versioned value, and the port that serves them.

Live, `wattwise.telemetry.model_dir.ModelDirectory` reads what `wattwise fit` writes (or a
ConfigMap mounts) and reloads it when the files change; a scenario's models are the replay
implementation. A pair with no model here plans from its prior (`Snapshot.model`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol, runtime_checkable

from wattwise.models.energy import WorkloadClassModel
from wattwise.models.power_curve import PowerCurve


@dataclass(frozen=True)
class ModelSet:
    """`version` changes whenever the content does (the re-plan gate compares it); `origin` says
    where it came from; `error` is why the newest files were not taken (the previous set is kept)."""

    by_pair: Mapping[tuple[str, str], WorkloadClassModel] = field(default_factory=lambda: MappingProxyType({}))
    node_power: Mapping[str, PowerCurve] = field(default_factory=lambda: MappingProxyType({}))
    version: int = 0
    origin: str = "none"
    error: str = ""


NO_MODELS = ModelSet()


@runtime_checkable
class EnergyModelSource(Protocol):
    def current(self) -> ModelSet: ...


class StaticModels:
    """A fixed set (a scenario's `energy_models`, tests)."""

    def __init__(self, models: Mapping[tuple[str, str], WorkloadClassModel],
                 node_power: Mapping[str, PowerCurve] | None = None, origin: str = "scenario"):
        self._set = ModelSet(MappingProxyType(dict(models)), MappingProxyType(dict(node_power or {})), 1, origin)

    def current(self) -> ModelSet:
        return self._set
