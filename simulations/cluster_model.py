"""The scenario's cluster as arrays over nodes and workloads, computed once per run.

Per (workload, node): may it run there at all (`models.eligibility.hard_reason`, as kube-scheduler
with the extender filters), the replica's capacity from `snapshot.model()` (measured, or the
hardware prior with its TEE overhead), its start-up time (confidential pods pay `startup_tee_s`),
and how much of the node's CPU and GPUs a replica keeps busy.

GPU nodes carry the taint GPU clouds put on them, `nvidia.com/gpu=present:NoSchedule` (GKE taints
every GPU node pool so), and pods that request `nvidia.com/gpu` tolerate it (the toleration
Kubernetes' ExtendedResourceToleration admission plugin adds: key `nvidia.com/gpu`, Exists,
NoSchedule); CPU pods do not. `with_gpu_taint` puts both on the scenario's snapshot (`run.simulate`
asks for it), so the core's `hard_reason` (models/admission.py's rule) keeps CPU pods off GPU nodes
for every policy, the planner included. A replica draws a standing share
(the model's intercept over its power at capacity) even when idle, plus the rest in proportion to
the frames it serves; the node's power then comes from its class curve at that utilisation.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from enum import IntEnum

import numpy as np

from wattwise.models.admission import Taint, TaintEffect, Toleration
from wattwise.models.eligibility import hard_reason, placement_reason
from wattwise.models.snapshot import Snapshot

GPU_TAINT = Taint("nvidia.com/gpu", TaintEffect.NO_SCHEDULE, "present")
GPU_TOLERATION = Toleration(key="nvidia.com/gpu", operator="Exists", effect=TaintEffect.NO_SCHEDULE)


class NodePower(IntEnum):
    """A simulated node's power state: the code stored per node in `ClusterState.node_state`, an
    int8 array (an IntEnum compares and stores as its integer, so numpy code keeps working)."""
    OFF = 0        # asleep: draws its sleep power
    WAKING = 1     # waking for `wake_s`: sleep power plus the wake energy spread over that time
    ON = 2         # awake: draws its curve's power at its utilisation
    SLEEPING = 3   # going to sleep: still draws as if on, until it is OFF


OFF, WAKING, ON, SLEEPING = NodePower.OFF, NodePower.WAKING, NodePower.ON, NodePower.SLEEPING


class PoweredNodes:
    """The cluster model's nodes in name order, each with its power state now. The node value
    for each (node, powered on) is made once, and the tuple is reused while no node's power
    state changes: a snapshot at 1,000 nodes then costs no copies of them."""

    def __init__(self, nodes):
        self._order = sorted(range(len(nodes)), key=lambda i: nodes[i].name)
        self._as_given = [nodes[i] for i in self._order]
        self._flipped: dict[int, object] = {}
        self._last: tuple[bytes, tuple] | None = None

    def nodes(self, powered: np.ndarray) -> tuple:
        key = powered.tobytes()
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        out = []
        for k, i in enumerate(self._order):
            n = self._as_given[k]
            if n.powered_on != bool(powered[i]):
                flipped = self._flipped.get(k)
                if flipped is None:
                    flipped = self._flipped[k] = replace(n, powered_on=not n.powered_on)
                n = flipped
            out.append(n)
        self._last = (key, tuple(out))
        return self._last[1]


@dataclass
class ClusterModel:
    snapshot: Snapshot
    node_names: list[str]
    class_names: list[str]
    zones: list[str]
    class_idx: np.ndarray      # [N]
    zone_idx: np.ndarray       # [N]
    alloc_cpu_m: np.ndarray    # [N] free for us (allocatable - reserved)
    alloc_mem_mib: np.ndarray
    alloc_gpu: np.ndarray
    total_cpu_m: np.ndarray    # allocatable
    total_mem_mib: np.ndarray
    pinned: np.ndarray         # [N] runs pods outside WattWise: never sleeps
    w_cpu_m: np.ndarray        # [W]
    w_mem_mib: np.ndarray
    w_gpu: np.ndarray
    eligible: np.ndarray       # [W, N] bool
    tee_ok: np.ndarray         # [W, N] bool (TEE requirement met; violations are counted against it)
    admitted: np.ndarray       # [W, N] bool (taints tolerated, selectors met; violations are counted against it)
    confidential: np.ndarray   # [W] bool
    cap_fps: np.ndarray        # [W, N] per replica (0 where no model)
    startup_s: np.ndarray      # [W, N]
    cpu_share: np.ndarray      # [W, N] fraction of node CPU one replica uses at full load
    gpu_share: np.ndarray      # [W, N] fraction of the node's GPUs
    standing: np.ndarray       # [W, N] share of a replica's dynamic power drawn when idle
    min_replicas: np.ndarray   # [W]
    max_replicas: np.ndarray   # [W]
    curve_util: list[np.ndarray]
    curve_w: list[np.ndarray]
    class_members: list[np.ndarray]
    gpu_count: np.ndarray      # [N]
    gpu_idle_w: np.ndarray     # [N] per GPU
    gpu_span_w: np.ndarray     # [N] per GPU, max - idle
    sleep_w: np.ndarray        # [N]
    wake_s: np.ndarray
    wake_energy_j: np.ndarray

    @cached_property
    def powered_nodes(self):
        """The model's nodes in name order with their power state (`PoweredNodes`)."""
        return PoweredNodes(self.snapshot.nodes)

    @property
    def n_nodes(self) -> int:
        return len(self.node_names)

    @property
    def n_workloads(self) -> int:
        return len(self.snapshot.workloads)

    def cpu_power_w(self, util: np.ndarray) -> np.ndarray:
        out = np.empty_like(util)
        for c, members in enumerate(self.class_members):
            out[members] = np.interp(util[members], self.curve_util[c], self.curve_w[c])
        return out

    def cpu_power_w_at(self, nodes: np.ndarray, util: np.ndarray) -> np.ndarray:
        """CPU-curve power of the given nodes at the given utilisations."""
        out = np.empty(len(nodes))
        classes = self.class_idx[nodes]
        for c in np.unique(classes):
            sel = classes == c
            out[sel] = np.interp(np.clip(util[sel], 0, 1), self.curve_util[c], self.curve_w[c])
        return out

    def node_power_w(self, cpu_util: np.ndarray, gpu_util: np.ndarray) -> np.ndarray:
        """Power of powered-on nodes at a utilisation (clipped to [0, 1])."""
        cpu = self.cpu_power_w(np.clip(cpu_util, 0.0, 1.0))
        return cpu + self.gpu_count * (self.gpu_idle_w + self.gpu_span_w * np.clip(gpu_util, 0.0, 1.0))

    @property
    def idle_w(self) -> np.ndarray:
        return self.node_power_w(np.zeros(self.n_nodes), np.zeros(self.n_nodes))


def with_gpu_taint(snapshot: Snapshot) -> Snapshot:
    """The snapshot with GPU nodes tainted `nvidia.com/gpu=present:NoSchedule` and the pods that
    request a GPU tolerating it (what a GPU cloud and the ExtendedResourceToleration plugin do)."""
    classes = snapshot.node_classes
    nodes = tuple(replace(n, taints=n.taints + (GPU_TAINT,))
                  if classes[n.node_class].gpu_count and GPU_TAINT not in n.taints else n for n in snapshot.nodes)
    workloads = tuple(
        replace(w, placement=replace(w.placement, tolerations=w.placement.tolerations + (GPU_TOLERATION,)))
        if w.needs_gpu and GPU_TOLERATION not in w.placement.tolerations else w for w in snapshot.workloads)
    return replace(snapshot, nodes=nodes, workloads=workloads)


def build_cluster_model(snapshot: Snapshot, gpu_taint: bool = False) -> ClusterModel:
    """The model of `snapshot` as given; `gpu_taint`: first taint its GPU nodes as GPU clouds do
    (`with_gpu_taint`), so the model's `snapshot`, which the planner-driven policies plan with,
    is the tainted one (`run.simulate` does, for every policy)."""
    if gpu_taint:
        snapshot = with_gpu_taint(snapshot)
    nodes = snapshot.nodes
    classes = dict(snapshot.node_classes)
    class_names = sorted(classes)
    zones = sorted({n.zone for n in nodes})
    N, W = len(nodes), len(snapshot.workloads)
    ci = np.array([class_names.index(n.node_class) for n in nodes])
    eligible = np.zeros((W, N), bool)
    tee_ok = np.zeros((W, N), bool)
    admitted = np.zeros((W, N), bool)
    cap = np.zeros((W, N))
    startup = np.zeros((W, N))
    cpu_share = np.zeros((W, N))
    gpu_share = np.zeros((W, N))
    standing = np.zeros((W, N))
    reason_cache: dict = {}
    for wi, w in enumerate(snapshot.workloads):
        for ni, n in enumerate(nodes):
            cls = classes[n.node_class]
            key = (wi, cls.name, n.zone, n.tee_ready, n.allocatable, n.taints, n.labels)
            if key not in reason_cache:
                model = snapshot.model(w, cls)
                reason_cache[key] = (hard_reason(w, n, cls, model), model)
            reason, model = reason_cache[key]
            tee_ok[wi, ni] = w.confidentiality.allows(n.tee_ready)
            admitted[wi, ni] = placement_reason(w.placement, n) is None
            startup[wi, ni] = cls.startup_tee_s if w.confidentiality.required else cls.startup_s
            if model is not None and model.capacity_fps > 0:
                cap[wi, ni] = model.capacity_fps
                full = model.replica_power_w(model.capacity_fps)
                standing[wi, ni] = min(max(model.intercept_w / full, 0.0), 1.0) if full > 0 else 0.0
            cpu_share[wi, ni] = min(1.0, w.footprint.cpu_m / (cls.cores * 1000.0))
            gpu_share[wi, ni] = min(1.0, w.footprint.gpu / cls.gpu_count) if cls.gpu_count else 0.0
            eligible[wi, ni] = reason is None
    cls_objs = [classes[c] for c in class_names]
    node_cls = [classes[n.node_class] for n in nodes]
    return ClusterModel(
        snapshot=snapshot, node_names=[n.name for n in nodes], class_names=class_names, zones=zones,
        class_idx=ci, zone_idx=np.array([zones.index(n.zone) for n in nodes]),
        alloc_cpu_m=np.array([n.free.cpu_m for n in nodes], float),
        alloc_mem_mib=np.array([n.free.memory_mib for n in nodes], float),
        alloc_gpu=np.array([n.free.gpu for n in nodes], float),
        total_cpu_m=np.array([n.allocatable.cpu_m for n in nodes], float),
        total_mem_mib=np.array([n.allocatable.memory_mib for n in nodes], float),
        pinned=np.array([n.reserved.cpu_m > 0 or n.reserved.memory_mib > 0 or n.reserved.gpu > 0 for n in nodes]),
        w_cpu_m=np.array([w.footprint.cpu_m for w in snapshot.workloads], float),
        w_mem_mib=np.array([w.footprint.memory_mib for w in snapshot.workloads], float),
        w_gpu=np.array([w.footprint.gpu for w in snapshot.workloads], float),
        eligible=eligible, tee_ok=tee_ok, admitted=admitted,
        confidential=np.array([w.confidentiality.required for w in snapshot.workloads]),
        cap_fps=cap, startup_s=startup, cpu_share=cpu_share, gpu_share=gpu_share, standing=standing,
        min_replicas=np.array([w.min_replicas for w in snapshot.workloads]),
        max_replicas=np.array([w.max_replicas for w in snapshot.workloads]),
        curve_util=[np.array(c.power.util) for c in cls_objs], curve_w=[np.array(c.power.power_w) for c in cls_objs],
        class_members=[np.where(ci == k)[0] for k in range(len(class_names))],
        gpu_count=np.array([c.gpu_count for c in node_cls], float),
        gpu_idle_w=np.array([c.gpu_idle_w for c in node_cls], float),
        gpu_span_w=np.array([max(c.gpu_max_w - c.gpu_idle_w, 0.0) for c in node_cls], float),
        sleep_w=np.array([c.power.sleep_w for c in node_cls], float),
        wake_s=np.array([c.wake_s for c in node_cls], float),
        wake_energy_j=np.array([c.wake_energy_j for c in node_cls], float))
