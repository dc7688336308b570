"""Nodes and node classes: what a node can do (CPU, AMX, GPUs, TEEs) and what it draws."""

from __future__ import annotations

from dataclasses import dataclass, field

from wattwise.models.admission import Taint
from wattwise.models.power_curve import PowerCurve
from wattwise.models.resources import Resources
from wattwise.models.tee import TeeKind


@dataclass(frozen=True)
class NodeClass:
    """Interchangeable nodes: same hardware, same TEE kinds, same power model.

    `startup_s`/`startup_energy_j` are what a new replica of a confidential workload pays on this
    class (confidential VM boot, attestation, model download and decryption); `wake_s` and
    `wake_energy_j` what it costs to bring a sleeping node back.
    """

    name: str
    cpu_vendor: str = "GenuineIntel"
    cpu_model: str = ""
    cores: int = 32
    memory_gib: float = 128.0
    amx: bool = False
    gpu_product: str = ""
    gpu_count: int = 0
    tee_kinds: frozenset[TeeKind] = frozenset()
    power: PowerCurve = field(default_factory=lambda: PowerCurve.linear(100.0, 400.0))
    gpu_idle_w: float = 0.0   # per GPU, on top of `power`
    gpu_max_w: float = 0.0    # per GPU board power
    startup_s: float = 5.0
    startup_tee_s: float = 10.0
    wake_s: float = 120.0
    wake_energy_j: float = 0.0

    @property
    def has_gpu(self) -> bool:
        return self.gpu_count > 0

    @property
    def accelerator(self) -> str:
        """The class's compute kind for a workload's per-frame cost: gpu, amx or cpu."""
        return "gpu" if self.has_gpu else ("amx" if self.amx else "cpu")

    @property
    def idle_w(self) -> float:
        return self.power.idle_w + self.gpu_count * self.gpu_idle_w

    @property
    def max_w(self) -> float:
        return self.power.max_w + self.gpu_count * self.gpu_max_w


@dataclass(frozen=True)
class Node:
    """One node as the planner sees it.

    `tee_ready` lists the TEE kinds usable now (the class may have a TEE whose driver or
    attestation is not ready). `reserved` is what pods outside WattWise's control already use;
    such a node stays on. `per_node_reserved` is what pods that run on every node (DaemonSet and
    static pods: Kepler, CNI, log agents) use: it takes room but never keeps a node on, since
    those pods come and go with their node.
    `powered_on` False means the node sleeps (or is cordoned for power saving) and must be woken.
    `taints` are the node's `spec.taints`: a workload whose placement rules do not tolerate one
    (NoSchedule or NoExecute) can never run there (`eligibility.placement_reason`).
    """

    name: str
    node_class: str
    zone: str = "default"
    tee_ready: frozenset[TeeKind] = frozenset()
    allocatable: Resources = Resources()
    reserved: Resources = Resources()
    per_node_reserved: Resources = Resources()
    powered_on: bool = True
    schedulable: bool = True
    labels: tuple[tuple[str, str], ...] = ()
    taints: tuple[Taint, ...] = ()

    @property
    def free(self) -> Resources:
        a, r, d = self.allocatable, self.reserved, self.per_node_reserved   # one Resources, not two
        return Resources(a.cpu_m - r.cpu_m - d.cpu_m, a.memory_mib - r.memory_mib - d.memory_mib, a.gpu - r.gpu - d.gpu)
