"""The simulated cluster as it is now: node power states, and replicas per workload and node
(starting or ready). Kept as arrays, updated only on events (a pod created, ready, deleted; a node
woken or put to sleep), so a step of physics is a few vector operations."""

from __future__ import annotations

import heapq

import numpy as np

from wattwise.models.delete_order import PodPhase, ScaleDownPod
from wattwise.simulations.cluster_model import OFF, ON, SLEEPING, WAKING, ClusterModel


class ClusterState:
    def __init__(self, cm: ClusterModel, powered_on: np.ndarray | None = None):
        self.cm = cm
        W, N = cm.n_workloads, cm.n_nodes
        self.node_state = np.where(powered_on if powered_on is not None else np.ones(N, bool), ON, OFF).astype(np.int8)
        self.state_until_s = np.zeros(N)
        self.empty_since_s = np.zeros(N)          # when the node last became empty of our pods
        self.ready = np.zeros((W, N), np.int32)
        self.booting = np.zeros((W, N), np.int32)
        self.pending = np.zeros(W, np.int64)
        self.free_cpu_m = cm.alloc_cpu_m.copy()
        self.free_mem_mib = cm.alloc_mem_mib.copy()
        self.free_gpu = cm.alloc_gpu.copy()
        self.capacity_fps = np.zeros(W)
        self._events: list[tuple[float, int, int, int]] = []   # (ready_at_s, seq, w, n)
        self._seq = 0
        self.scaling_events = 0        # pods created or deleted
        self.wakes = 0
        self.version = 0               # bumps on every change of placement or power state

    # --- pods -------------------------------------------------------------------------------
    def replicas(self, w: int) -> int:
        return int(self.ready[w].sum() + self.booting[w].sum() + self.pending[w])

    def pods_on(self) -> np.ndarray:
        return (self.ready + self.booting).sum(axis=0)

    def scale_down_pods(self, w: int) -> tuple[list[ScaleDownPod], list[int]]:
        """The pods of `w` bound to nodes, as the ReplicaSet controller compares them on
        scale-down (`models.delete_order`), and each one's node. A starting pod (VM boot,
        attestation, model load) counts as Pending and not ready. Pods are listed node by node,
        starting ones first; the simulator keeps no per-pod times, so pods alike keep that order."""
        pods: list[ScaleDownPod] = []
        nodes: list[int] = []
        names = self.cm.node_names
        for n in np.flatnonzero(self.ready[w] + self.booting[w]).tolist():
            starting = ScaleDownPod(names[n], PodPhase.PENDING, ready=False)
            ready = ScaleDownPod(names[n], PodPhase.RUNNING, ready=True)
            for pod, count in ((starting, int(self.booting[w, n])), (ready, int(self.ready[w, n]))):
                pods.extend([pod] * count)
                nodes.extend([n] * count)
        return pods, nodes

    def fits(self, w: int) -> np.ndarray:
        cm = self.cm
        return ((self.free_cpu_m >= cm.w_cpu_m[w]) & (self.free_mem_mib >= cm.w_mem_mib[w])
                & (self.free_gpu >= cm.w_gpu[w]))

    def add_pod(self, w: int, n: int, now_s: float, instant: bool = False) -> None:
        cm = self.cm
        self.free_cpu_m[n] -= cm.w_cpu_m[w]
        self.free_mem_mib[n] -= cm.w_mem_mib[w]
        self.free_gpu[n] -= cm.w_gpu[w]
        self.scaling_events += 1
        self.version += 1
        if instant:
            self.ready[w, n] += 1
            self.capacity_fps[w] += cm.cap_fps[w, n]
            return
        self.booting[w, n] += 1
        self._seq += 1
        heapq.heappush(self._events, (now_s + cm.startup_s[w, n], self._seq, w, n))

    def remove_pod(self, w: int, n: int, now_s: float) -> None:
        """Delete one pod of `w` on `n`: a starting one first (its start-up is then wasted)."""
        cm = self.cm
        if self.booting[w, n] > 0:
            self.booting[w, n] -= 1
            self._drop_event(w, n)
        elif self.ready[w, n] > 0:
            self.ready[w, n] -= 1
            self.capacity_fps[w] -= cm.cap_fps[w, n]
        else:
            raise ValueError(f"no pod of workload {w} on node {n}")
        self.free_cpu_m[n] += cm.w_cpu_m[w]
        self.free_mem_mib[n] += cm.w_mem_mib[w]
        self.free_gpu[n] += cm.w_gpu[w]
        self.scaling_events += 1
        self.version += 1
        if self.ready[:, n].sum() + self.booting[:, n].sum() == 0:
            self.empty_since_s[n] = now_s

    def _drop_event(self, w: int, n: int) -> None:
        # the latest-started pod of (w, n) goes: remove its event
        for i in range(len(self._events) - 1, -1, -1):
            if self._events[i][2] == w and self._events[i][3] == n:
                self._events[i] = self._events[-1]
                self._events.pop()
                heapq.heapify(self._events)
                return

    def promote(self, now_s: float) -> None:
        """Pods whose start-up has finished become ready."""
        ev = self._events
        while ev and ev[0][0] <= now_s + 1e-9:
            _, _, w, n = heapq.heappop(ev)
            self.booting[w, n] -= 1
            self.ready[w, n] += 1
            self.capacity_fps[w] += self.cm.cap_fps[w, n]
            self.version += 1

    # --- nodes ------------------------------------------------------------------------------
    def advance_nodes(self, now_s: float) -> None:
        done = (self.state_until_s <= now_s + 1e-9)
        waking = done & (self.node_state == WAKING)
        sleeping = done & (self.node_state == SLEEPING)
        if waking.any() or sleeping.any():
            self.node_state[waking] = ON
            self.node_state[sleeping] = OFF
            self.version += 1

    def wake(self, n: int, now_s: float) -> None:
        if self.node_state[n] in (OFF, SLEEPING):
            self.node_state[n] = WAKING
            self.state_until_s[n] = now_s + self.cm.wake_s[n]
            self.wakes += 1
            self.version += 1

    def sleep(self, n: int, now_s: float, sleep_s: float) -> None:
        if self.node_state[n] == ON and self.ready[:, n].sum() + self.booting[:, n].sum() == 0:
            self.node_state[n] = SLEEPING
            self.state_until_s[n] = now_s + sleep_s
            self.version += 1

    def set_power_instant(self, on: np.ndarray) -> None:
        new = np.where(on, ON, OFF).astype(np.int8)
        if not np.array_equal(new, self.node_state):
            self.node_state = new
            self.version += 1

    @property
    def schedulable(self) -> np.ndarray:
        return self.node_state == ON
