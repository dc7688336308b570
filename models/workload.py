"""Workloads: a video-inference deployment with a frames-per-second SLA."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

from wattwise.models.admission import NO_RULES, PlacementRules
from wattwise.models.errors import InvalidInputError
from wattwise.models.network import Reach
from wattwise.models.resources import Resources
from wattwise.models.tee import NONE, Confidentiality


@dataclass(frozen=True)
class Sla:
    fps_per_stream: float = 15.0
    latency_ms: float = 200.0


@dataclass(frozen=True)
class Demand:
    """Demand now: active streams x FPS per stream, or a total FPS.

    `trustworthy` False means the telemetry behind it is missing, stale or absurd; the planner
    then never plans fewer replicas than it last planned on trustworthy data.
    """

    streams: float | None = None
    total_fps: float | None = None
    trustworthy: bool = True
    note: str = ""
    # pre-warming (models/forecast.py): the demand expected when a replica started now is ready,
    # `lead_s` from now; None: no forecast
    expected_fps: float | None = None
    lead_s: float = 0.0

    def __post_init__(self):
        # the doors judge telemetry (scaler.demand.check_plausible) and mark it untrustworthy; a value
        # the core is told to trust must be one: nan would read as 0 fps, inf would crash the planner
        for name in ("streams", "total_fps"):
            value = getattr(self, name)
            if value is not None and self.trustworthy and not (math.isfinite(value) and value >= 0):
                raise InvalidInputError(f"demand.{name}", f"{value!r} is not a number of at least 0",
                                        "mark the reading untrustworthy, so the last trustworthy plan is held")

    def fps(self, sla: Sla) -> float:
        if self.total_fps is not None:
            return max(0.0, float(self.total_fps))
        if self.streams is not None:
            return max(0.0, float(self.streams) * sla.fps_per_stream)
        return 0.0


@dataclass(frozen=True)
class Workload:
    name: str
    namespace: str = "default"
    model_type: str = "detector-bf16"
    sla: Sla = Sla()
    demand: Demand = Demand(streams=0)
    confidentiality: Confidentiality = NONE
    footprint: Resources = Resources(cpu_m=4000, memory_mib=8192)
    min_replicas: int = 0
    max_replicas: int = 1000
    runtime_class: str = ""
    headroom: float | None = None  # capacity above demand for this workload; None: the planner's default
    labels: tuple[tuple[str, str], ...] = field(default=())
    # the pod template's nodeSelector, required node affinity and tolerations (admission.py)
    placement: PlacementRules = NO_RULES
    # where its cameras are and how far each zone is (network.py); None: any zone, no round trip
    reach: Reach | None = None

    def __post_init__(self):
        if self.min_replicas < 0 or self.max_replicas < self.min_replicas:
            raise InvalidInputError(f"workloads.{self.name}.max_replicas",
                                    "need 0 <= min_replicas <= max_replicas")
        if not (self.sla.fps_per_stream > 0 and math.isfinite(self.sla.fps_per_stream)):
            raise InvalidInputError(f"workloads.{self.name}.sla.fps_per_stream", "must be a positive number")
        if self.headroom is not None and not 0 <= self.headroom <= 5:
            raise InvalidInputError(f"workloads.{self.name}.headroom", "must be between 0 and 5 (a fraction)")
        if not (self.sla.latency_ms > 0):
            raise InvalidInputError(f"workloads.{self.name}.sla.latency_ms", "must be a positive number")

    def with_demand(self, demand: Demand) -> "Workload":
        """`replace(self, demand=demand)`, made for the hot path: doors give every workload a new
        demand on every refresh, several times, and the generic `replace` (which checks again in
        `__post_init__` what a demand never touches) cost ~5 us a copy where this costs ~1."""
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__, demand=demand)
        return new

    @cached_property
    def key(self) -> str:
        """`namespace/name`, formed once per object (read ~1,000 times a plan); not a field, so
        equality, hashing and `replace` are as before."""
        return f"{self.namespace}/{self.name}"

    @property
    def needs_gpu(self) -> bool:
        return self.footprint.gpu > 0

    def headroom_or(self, default: float) -> float:
        return default if self.headroom is None else self.headroom

    @property
    def demand_fps(self) -> float:
        return self.demand.fps(self.sla)
