"""What node autoscalers simulate before they act, shared by cluster-autoscaler and Karpenter:
where pods would fit (kube-scheduler's filters, i.e. the workload's eligible nodes with TEE,
accelerator and taints, and free CPU, memory and GPUs; first fit, as both simulate scheduling
without scoring), which pending pods the nodes already starting will take, and the node groups
new nodes come from (the scenario's nodes of one class, zone and eligibility; the nodes that run
pods outside WattWise, `ClusterModel.pinned`, are not managed by a node autoscaler)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wattwise.simulations.cluster_model import OFF, WAKING, ClusterModel
from wattwise.simulations.cluster_state import ClusterState


@dataclass
class Room:
    """Free CPU, memory and GPUs per node, for a simulation that does not touch the cluster."""

    cpu_m: np.ndarray
    mem_mib: np.ndarray
    gpu: np.ndarray

    @classmethod
    def of(cls, st: ClusterState) -> Room:
        return cls(st.free_cpu_m.copy(), st.free_mem_mib.copy(), st.free_gpu.copy())

    def copy(self) -> Room:
        return Room(self.cpu_m.copy(), self.mem_mib.copy(), self.gpu.copy())

    def fits(self, cm: ClusterModel, w: int) -> np.ndarray:
        return (self.cpu_m >= cm.w_cpu_m[w]) & (self.mem_mib >= cm.w_mem_mib[w]) & (self.gpu >= cm.w_gpu[w])

    def take(self, cm: ClusterModel, w: int, n: int) -> None:
        self.cpu_m[n] -= cm.w_cpu_m[w]
        self.mem_mib[n] -= cm.w_mem_mib[w]
        self.gpu[n] -= cm.w_gpu[w]


def eviction_grace_s(cm: ClusterModel) -> np.ndarray:
    """Per workload, how long an evicted pod keeps serving: its longest start-up on a node it may
    run on, so its replacement is ready first wherever it lands (what an operator sets with a
    preStop hook and terminationGracePeriodSeconds; WattWise's pods get it too, since
    cluster-autoscaler drains its nodes as well)."""
    return np.array([cm.startup_s[w][cm.eligible[w]].max() if cm.eligible[w].any() else 0.0
                     for w in range(cm.n_workloads)])


def eviction_grace_text(cm: ClusterModel) -> dict:
    """The preStop grace as the summary's tuning names it, per workload name."""
    grace = eviction_grace_s(cm)
    return {"eviction_grace_s": {wl.name: float(grace[w]) for w, wl in enumerate(cm.snapshot.workloads)}}


def largest_first(cm: ClusterModel, pods: list[int]) -> list[int]:
    """Pods (workload indices) in decreasing size: GPUs, then CPU, then memory."""
    return sorted(pods, key=lambda w: (-cm.w_gpu[w], -cm.w_cpu_m[w], -cm.w_mem_mib[w], w))


def node_pods(st: ClusterState, n: int) -> list[int]:
    """The pods bound to node `n` (starting or ready), one workload index per pod."""
    counts = st.ready[:, n] + st.booting[:, n]
    return [int(w) for w in np.flatnonzero(counts) for _ in range(int(counts[w]))]


def place_first_fit(cm: ClusterModel, room: Room, pods: list[int], destinations: np.ndarray) -> list[int]:
    """Bind `pods` (largest first) to the first destination that admits and fits each, taking the
    room; returns the pods that fit nowhere."""
    left = []
    for w in largest_first(cm, pods):
        ok = np.flatnonzero(destinations & cm.eligible[w] & room.fits(cm, w))
        if len(ok):
            room.take(cm, w, int(ok[0]))
        else:
            left.append(w)
    return left


def pending_pods(st: ClusterState) -> list[int]:
    return [int(w) for w in np.flatnonzero(st.pending) for _ in range(int(st.pending[w]))]


def uncovered_pending(cm: ClusterModel, st: ClusterState, room: Room | None = None) -> list[int]:
    """Pending pods that the nodes already starting (waking, not cordoned) will not take: what a
    node autoscaler still has to provision for. Takes their room in `room` if given."""
    room = room if room is not None else Room.of(st)
    starting = (st.node_state == WAKING) & ~st.cordoned
    return place_first_fit(cm, room, pending_pods(st), starting)


@dataclass(frozen=True)
class NodeGroup:
    """Nodes a node autoscaler can add alike: one class and zone, the same eligibility and size."""

    members: np.ndarray     # node indices
    cls: int

    def available(self, st: ClusterState) -> np.ndarray:
        """Members that are off (powered down, not on their way up or down)."""
        return self.members[st.node_state[self.members] == OFF]


def node_groups(cm: ClusterModel) -> list[NodeGroup]:
    groups: dict[tuple, list[int]] = {}
    for n in np.flatnonzero(~cm.pinned):
        key = (int(cm.class_idx[n]), int(cm.zone_idx[n]), cm.eligible[:, n].tobytes(),
               cm.alloc_cpu_m[n], cm.alloc_mem_mib[n], cm.alloc_gpu[n])
        groups.setdefault(key, []).append(int(n))
    return [NodeGroup(np.array(members), key[0]) for key, members in groups.items()]


def pack_new_nodes(cm: ClusterModel, pods: list[int], template: int, max_nodes: int) -> tuple[int, list[int]]:
    """First-fit decreasing of `pods` onto up to `max_nodes` empty nodes like node `template`
    (the pods it cannot host are skipped): (nodes used, pods placed)."""
    cap = np.array([cm.alloc_cpu_m[template], cm.alloc_mem_mib[template], cm.alloc_gpu[template]])
    opened: list[np.ndarray] = []
    placed = []
    for w in largest_first(cm, pods):
        need = np.array([cm.w_cpu_m[w], cm.w_mem_mib[w], cm.w_gpu[w]])
        if not cm.eligible[w, template] or np.any(need > cap):
            continue
        for free in opened:
            if np.all(free >= need):
                free -= need
                placed.append(w)
                break
        else:
            if len(opened) < max_nodes:
                opened.append(cap - need)
                placed.append(w)
    return len(opened), placed
