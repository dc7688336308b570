"""The simulated cluster as it is now: node power states (and a node autoscaler's cordons), and
replicas per workload and node (starting, ready, or evicted and serving out their grace period).
Kept as arrays, updated only on events (a pod created, ready, evicted, deleted; a node woken,
cordoned or put to sleep), so a step of physics is a few vector operations."""

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
        self.pods_changed_s = np.zeros(N)         # when a pod was last bound to or removed from it (or it woke)
        self.cordoned = np.zeros(N, bool)         # tainted NoSchedule by a node autoscaler about to remove it
        self.retiring = np.zeros(N, bool)         # drained: to be powered down once empty
        self.ready = np.zeros((W, N), np.int32)
        self.booting = np.zeros((W, N), np.int32)
        self.terminating = np.zeros((W, N), np.int32)   # evicted, serving until their grace ends
        self.pending = np.zeros(W, np.int64)
        self.free_cpu_m = cm.alloc_cpu_m.copy()
        self.free_mem_mib = cm.alloc_mem_mib.copy()
        self.free_gpu = cm.alloc_gpu.copy()
        self.capacity_fps = np.zeros(W)
        self._events: list[tuple[float, int, int, int]] = []   # (ready_at_s, seq, w, n)
        self._ends: list[tuple[float, int, int, int]] = []     # (gone_at_s, seq, w, n) of terminating pods
        self._seq = 0
        self.scaling_events = 0        # pods created or deleted
        self.wakes = 0
        self.version = 0               # bumps on every change of placement or power state

    # --- pods -------------------------------------------------------------------------------
    def replicas(self, w: int) -> int:
        return int(self.ready[w].sum() + self.booting[w].sum() + self.pending[w])

    def pods_on(self) -> np.ndarray:
        """Pods per node: starting, ready and terminating."""
        return (self.ready + self.booting + self.terminating).sum(axis=0)

    def pods_on_node(self, n: int) -> int:
        return int(self.ready[:, n].sum() + self.booting[:, n].sum() + self.terminating[:, n].sum())

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
        self.pods_changed_s[n] = now_s
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
        self.pods_changed_s[n] = now_s
        if self.pods_on_node(n) == 0:
            self.empty_since_s[n] = now_s

    def drain(self, n: int, now_s: float, grace_s: np.ndarray) -> int:
        """Cordon `n` and evict every pod on it, as a node autoscaler's drain does (the node is
        then `retiring`: powered down by its autoscaler once empty). The ReplicaSet creates each
        evicted pod's replacement at once (pending until kube-scheduler binds it elsewhere); a
        starting pod goes at once, a ready one keeps serving for its workload's `grace_s` (a
        preStop hook holding it until a replacement can be ready) and then goes. Returns how many
        pods were evicted."""
        self.cordoned[n] = True
        self.retiring[n] = True
        evicted = 0
        for w in np.flatnonzero(self.ready[:, n] + self.booting[:, n]).tolist():
            starting, k = int(self.booting[w, n]), int(self.ready[w, n])
            for _ in range(starting):
                self.remove_pod(w, n, now_s)
            if k:
                self.ready[w, n] -= k
                self.terminating[w, n] += k
                for _ in range(k):
                    self._seq += 1
                    heapq.heappush(self._ends, (now_s + float(grace_s[w]), self._seq, w, n))
                self.scaling_events += k
                self.version += 1
                self.pods_changed_s[n] = now_s
            self.pending[w] += starting + k
            evicted += starting + k
        return evicted

    def _drop_event(self, w: int, n: int) -> None:
        # the latest-started pod of (w, n) goes: remove its event
        for i in range(len(self._events) - 1, -1, -1):
            if self._events[i][2] == w and self._events[i][3] == n:
                self._events[i] = self._events[-1]
                self._events.pop()
                heapq.heapify(self._events)
                return

    def promote(self, now_s: float) -> None:
        """Pods whose start-up has finished become ready; evicted pods whose grace is over go."""
        ev = self._events
        while ev and ev[0][0] <= now_s + 1e-9:
            _, _, w, n = heapq.heappop(ev)
            self.booting[w, n] -= 1
            self.ready[w, n] += 1
            self.capacity_fps[w] += self.cm.cap_fps[w, n]
            self.version += 1
        ends, cm = self._ends, self.cm
        while ends and ends[0][0] <= now_s + 1e-9:
            _, _, w, n = heapq.heappop(ends)
            self.terminating[w, n] -= 1
            self.capacity_fps[w] -= cm.cap_fps[w, n]
            self.free_cpu_m[n] += cm.w_cpu_m[w]
            self.free_mem_mib[n] += cm.w_mem_mib[w]
            self.free_gpu[n] += cm.w_gpu[w]
            self.version += 1
            if self.pods_on_node(n) == 0:
                self.empty_since_s[n] = now_s

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
            self.pods_changed_s[n] = self.state_until_s[n]
            self.cordoned[n] = False
            self.wakes += 1
            self.version += 1

    def sleep(self, n: int, now_s: float, sleep_s: float) -> None:
        if self.node_state[n] == ON and self.pods_on_node(n) == 0:
            self.node_state[n] = SLEEPING
            self.state_until_s[n] = now_s + sleep_s
            self.cordoned[n] = self.retiring[n] = False
            self.version += 1

    def power_down_drained(self, now_s: float, sleep_s: float) -> list[int]:
        """Put drained nodes whose last pod has gone to sleep; returns them."""
        done = [int(n) for n in np.flatnonzero(self.retiring & (self.node_state == ON)) if self.pods_on_node(int(n)) == 0]
        for n in done:
            self.sleep(n, now_s, sleep_s)
        return done

    def set_power_instant(self, on: np.ndarray) -> None:
        new = np.where(on, ON, OFF).astype(np.int8)
        if not np.array_equal(new, self.node_state):
            self.node_state = new
            self.version += 1

    @property
    def schedulable(self) -> np.ndarray:
        return (self.node_state == ON) & ~self.cordoned
