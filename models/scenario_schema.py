"""The scenario file's schema (YAML), validated with pydantic so a mistake is reported with its
field path. `scenario.py` turns a validated file into the core's values."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ZoneSpec(Strict):
    carbon_g_per_kwh: float = Field(ge=0, le=3000)
    carbon_trace: str | None = None          # CSV (Electricity Maps data-portal format), for simulation
    signal: Literal["average", "marginal"] = "average"


class GpuSpec(Strict):
    product: str
    count: int = Field(ge=1, le=16)
    idle_w: float = Field(ge=0, le=2000)
    max_w: float = Field(gt=0, le=2000)
    confidential: bool = False


class PowerSpec(Strict):
    """Exactly one of: a SPECpower result (by hash, from `power_curves`), 11 points, or idle and max."""

    specpower: str | None = None
    curve_w: list[float] | None = Field(default=None, min_length=11, max_length=11)
    idle_w: float | None = Field(default=None, ge=0)
    max_w: float | None = Field(default=None, gt=0)
    sleep_w: float = Field(default=10.0, ge=0)

    @model_validator(mode="after")
    def one_source(self):
        given = [self.specpower is not None, self.curve_w is not None, self.idle_w is not None or self.max_w is not None]
        if sum(given) != 1:
            raise ValueError("give exactly one of specpower, curve_w, or idle_w with max_w")
        if given[2] and (self.idle_w is None or self.max_w is None or self.max_w < self.idle_w):
            raise ValueError("idle_w and max_w go together, with max_w >= idle_w")
        return self


class NodeClassSpec(Strict):
    cpu_vendor: Literal["GenuineIntel", "AuthenticAMD"] = "GenuineIntel"
    cpu_model: str = ""
    cores: int = Field(ge=1, le=1024)
    memory_gib: float = Field(gt=0)
    amx: bool = False
    tee: list[str] = []
    gpu: GpuSpec | None = None
    power: PowerSpec
    startup_s: float = Field(default=5.0, ge=0)
    startup_tee_s: float = Field(default=10.0, ge=0)
    wake_s: float = Field(default=120.0, ge=0)
    wake_energy_j: float = Field(default=30000.0, ge=0)


class NodeGroupSpec(Strict):
    name_prefix: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    node_class: str = Field(alias="class")
    zone: str
    count: int = Field(ge=1, le=100_000)
    powered_on: int | None = Field(default=None, ge=0)
    tee_ready: bool = True
    reserved_cpu: str = "0"
    reserved_memory: str = "0"

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class DemandProfileSpec(Strict):
    """For simulation: how this workload's streams follow the scenario's demand trace."""

    peak_streams: float = Field(gt=0)
    phase_h: float = 0.0     # shifts the daily cycle (a different time zone of cameras)
    floor_streams: float = Field(default=0.0, ge=0)


class WorkloadSpec(Strict):
    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    namespace: str = "default"
    model: str = "detector-bf16"
    runtime_class: str | None = None
    tee: list[str] | None = None
    streams: float | None = Field(default=None, ge=0)
    total_fps: float | None = Field(default=None, ge=0)
    fps_per_stream: float = Field(default=15.0, gt=0, le=240)
    latency_ms: float = Field(default=200.0, gt=0)
    cpu: str = "4"
    memory: str = "8Gi"
    gpu: int = Field(default=0, ge=0, le=16)
    min_replicas: int = Field(default=0, ge=0)
    max_replicas: int = Field(default=1000, ge=0)
    demand_profile: DemandProfileSpec | None = None
    origin_zone: str | None = None       # where its cameras are (needs `network`)

    @model_validator(mode="after")
    def demand_given(self):
        if (self.streams is None) == (self.total_fps is None):
            raise ValueError("give exactly one of streams or total_fps")
        if self.max_replicas < self.min_replicas:
            raise ValueError("max_replicas must be at least min_replicas")
        profile = self.demand_profile
        if profile is not None and profile.peak_streams < profile.floor_streams:
            raise ValueError(f"workload {self.name!r}: demand_profile.peak_streams ({profile.peak_streams:g}) is "
                             f"below demand_profile.floor_streams ({profile.floor_streams:g})")
        return self


class NetworkSpec(Strict):
    """Round trips between zones, {ZONE: {ZONE: ms}} (models/network.py checks the values)."""

    rtt_ms: dict[str, dict[str, float]] = Field(min_length=1)


class SettingsSpec(Strict):
    headroom: float = Field(default=0.10, ge=0, le=5)
    scale_down_window_s: float = Field(default=300.0, ge=0)
    amortise_s: float = Field(default=3600.0, gt=0)
    time_budget_s: float = Field(default=10.0, gt=0)
    mip_node_limit: int = Field(default=500, ge=1)


class SimulationSpec(Strict):
    demand_trace: str | None = None
    start: str | None = None
    days: float = Field(default=7, gt=0)
    step_s: float = Field(default=60, gt=0)


class ScenarioSpec(Strict):
    name: str
    description: str = ""
    objective: Literal["energy", "carbon", "balanced"] = "energy"
    carbon_weight: float | None = Field(default=None, ge=0, le=1)
    power_curves: str | None = None
    energy_models: str | None = None
    settings: SettingsSpec = SettingsSpec()
    zones: dict[str, ZoneSpec] = Field(min_length=1)
    network: NetworkSpec | None = None
    node_classes: dict[str, NodeClassSpec] = Field(min_length=1)
    nodes: list[NodeGroupSpec] = Field(min_length=1)
    workloads: list[WorkloadSpec] = Field(min_length=1)
    simulation: SimulationSpec = SimulationSpec()
