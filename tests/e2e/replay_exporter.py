"""A replay exporter: what a cluster's exporters write, live, from the simulator's physics.

`ReplayCluster` holds the truth and advances it with wall-clock time; `ReplayExporter` serves it
over HTTP on 127.0.0.1 (its own thread) as the exporters of a real cluster would, one scrape target
per exporter pod, with an HTTP service discovery endpoint per job that a real Prometheus reads
(`http_sd_configs`) in place of Kubernetes service discovery; `scrape_config()` writes that
Prometheus's configuration, relabelling targets as the Prometheus Operator does for a
ServiceMonitor. Nothing here imports the adapters under test: names and labels are the exporters'.

Physics (the simulator's, `simulations/physics.py`, applied per replica because Kepler and the FPS
gauges are per pod): each replica is offered frames (its streams: a rate redrawn every few seconds
between `lo` and `hi` times its capacity, or a constant one); it serves min(offered, capacity) and
drops the rest; it draws its pair's power at the FPS it serves (`PairTruth`: the energy model of
that (workload, node class), e.g. `models/priors.prior_model`, times a factor), with a little noise
per block; the node draws its class's power curve at the utilisation the simulator computes
(`standing + (1 - standing) * rho` of each replica's CPU share, plus other tenants). Energy
counters integrate those watts over wall seconds, exactly, so Prometheus's `rate()` gives watts.

Label sets, as the exporters write them:
- Kepler 0.10+ (sustainable-computing-io/kepler docs/user/metrics.md; Helm chart ServiceMonitor: no
  relabelling, labels not honoured): `kepler_pod_cpu_joules_total` and `kepler_pod_cpu_watts`
  {pod_id, pod_name, pod_namespace, state, zone}, `kepler_container_cpu_joules_total`
  {container_id, container_name, runtime, state, zone, pod_id}, `kepler_node_cpu_joules_total`,
  `_watts`, `_active_joules_total`, `_idle_joules_total` {zone, path}, `kepler_node_cpu_usage_ratio`,
  all with the constant label `node_name`. Zones package, core, dram (package includes core: the
  readers pick one). A pod that ended stays exported by the node's Kepler as `state="terminated"`,
  its counter frozen, for `terminated_keep_s`.
- Kepler up to 0.9 (kepler pkg/metrics consts.go; its ServiceMonitor relabels `instance` from the
  pod's node name, labels not honoured): `kepler_container_{package,core,dram}_joules_total` and
  `kepler_container_joules_total` {container_id, pod_name, container_name, container_namespace,
  mode=dynamic|idle}; `kepler_node_{package,core,dram,platform}_joules_total` {package, instance,
  mode}: the exported `instance` clashes with the target's and Prometheus keeps it as
  `exported_instance`. Kernel and system processes appear as the `system_processes` container.
- kube-state-metrics (kube-prometheus ServiceMonitor: `honorLabels: true`, target labels pod,
  service, endpoint, namespace dropped): `kube_pod_info`, `kube_pod_labels` (the allowlisted
  `app` and `wattwise.io/workload`), `kube_pod_status_phase`, `kube_node_info`, `kube_node_labels`
  (every label: `--metric-labels-allowlist=nodes=[*]`).
- The inference pods (the reference pipeline): gauges `infer_fps` and `drop_fps` with no labels of
  their own; `namespace`, `pod`, `service`, `container`, `endpoint`, `job` are target labels.

Control API (any thread): `scale_power`, `invert_power` (power falling as FPS rises),
`saturate` (a replica serving less than its pair's capacity), `add_pod`, `remove_pod`,
`move_pod` (gone from its node, back on another after a gap, with a new UID), `restart_kepler`
(its targets fail for a moment, then every counter of that node starts from zero).
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import re
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from wattwise.models.energy import WorkloadClassModel
from wattwise.models.power_curve import PowerCurve

KEPLER_010 = "0.10"
KEPLER_09 = "0.9"
SCHEMAS = (KEPLER_010, KEPLER_09)
KEPLER_NAMESPACE = "kepler"
MONITORING_NAMESPACE = "monitoring"
# the DaemonSet / Deployment name of each exporter, which its ServiceMonitor's jobLabel turns into `job`
KEPLER_JOB = {KEPLER_010: "kepler", KEPLER_09: "kepler-exporter"}
KEPLER_PORT = {KEPLER_010: 28282, KEPLER_09: 9102}
KSM_JOB = "kube-state-metrics"
APP_PORT = 8000


# -- the truth ----------------------------------------------------------------------------------

@dataclass
class PairTruth:
    """What one replica of a workload costs and serves on one node class."""

    model: WorkloadClassModel
    power_factor: float = 1.0   # a model upgrade: the same frames for less power
    inverted: bool = False      # a fault: power falls as FPS rises

    @property
    def capacity_fps(self) -> float:
        return self.model.capacity_fps

    def power_w(self, fps: float) -> float:
        """Watts at `fps` frames served, before noise."""
        if self.inverted:
            fps = self.capacity_fps - fps
        return self.power_factor * self.model.power.power_w(min(max(fps, 0.0), self.capacity_fps))


@dataclass
class ReplayNode:
    name: str
    node_class: str
    curve: PowerCurve
    cores: int
    labels: dict[str, str]            # Kubernetes labels
    ip: str
    background_util: float = 0.02     # other tenants and the system
    kepler: dict[str, str] = field(default_factory=dict)   # schema -> the Kepler pod's name
    # state
    util: float = 0.0
    power_w: float = 0.0
    kepler_up: bool = True
    kepler_back_s: float = 0.0
    kepler_j: float = 0.0             # package energy since this node's Kepler started
    kepler_idle_j: float = 0.0


@dataclass
class ReplayPod:
    namespace: str
    name: str
    node: str | None                  # None: pending
    uid: str
    ip: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    owner_kind: str = "ReplicaSet"
    owner_name: str = ""
    cpu_m: int = 4000
    container: str = "inference"
    inference: bool = True            # exports infer_fps/drop_fps; False: another tenant's pod
    workload: str = ""                # namespace/name; inference pods only
    phase: str = "Running"
    load: tuple[float, float] = (0.15, 1.2)   # offered FPS, as a fraction of capacity, redrawn per block
    constant_fps: float | None = None         # offered FPS, constant (with 1% jitter per block)
    block_s: tuple[float, float] = (6.0, 12.0)
    power_w: float = 0.0              # other tenants' pods: constant power
    capacity_factor: float = 1.0      # below 1: the replica serves less than its pair's capacity
    # state
    offered_fps: float = 0.0
    delivered_fps: float = 0.0
    dropped_fps: float = 0.0
    next_block_s: float = 0.0
    noise: float = 0.0
    kepler_j: float = 0.0             # energy since the node's Kepler first saw it
    kepler_idle_j: float = 0.0        # Kepler 0.9's idle share
    container_id: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def running(self) -> bool:
        return self.node is not None and self.phase == "Running"


@dataclass
class Terminated:
    """A pod that left a node, still exported by that node's Kepler 0.10 (frozen counter)."""

    node: str
    pod: ReplayPod
    until_s: float


def _seed(*parts: Any) -> int:
    return zlib.crc32("/".join(str(p) for p in parts).encode())


class ReplayCluster:
    """The replayed cluster's state, advanced to wall-clock time on every read (thread-safe)."""

    def __init__(self, nodes: Iterable[ReplayNode], truths: dict[tuple[str, str], PairTruth], *,
                 noise: float = 0.01, seed: int = 14, terminated_keep_s: float = 20.0,
                 clock: Callable[[], float] = time.time):
        self.nodes = {n.name: n for n in nodes}
        self.truths = dict(truths)
        self.pods: dict[tuple[str, str], ReplayPod] = {}
        self.terminated: list[Terminated] = []
        self.noise = noise
        self.seed = seed
        self.terminated_keep_s = terminated_keep_s
        self.clock = clock
        self.t = clock()
        self.lock = threading.RLock()
        self._pending: list[tuple[float, ReplayPod]] = []        # pods coming back after a move
        self._listeners: list[Callable[[str, ReplayPod], None]] = []
        self._rng = random.Random(seed)
        self._uids = 0
        # workload-level demand (`set_demand`): offered FPS per workload, shared by its running
        # replicas as a queue shares frames, and the frames offered and delivered so far
        self.demand_fps: dict[str, float] = {}
        self.offered_frames: dict[str, float] = {}
        self.delivered_frames: dict[str, float] = {}
        self.energy_j = 0.0               # every node's power integrated since the start (never reset)

    # -- reading -------------------------------------------------------------------------------

    def truth_of(self, pod: ReplayPod) -> PairTruth | None:
        if not pod.inference or pod.node is None:
            return None
        return self.truths.get((pod.workload, self.nodes[pod.node].node_class))

    def on_change(self, fn: Callable[[str, ReplayPod], None]) -> None:
        """`fn("ADDED" | "DELETED", pod)` whenever a pod appears or goes (also when a moved pod
        comes back), `fn("MODIFIED", pod)` when `set_phase` changes its phase, on the thread that
        made the change or read the exporter."""
        self._listeners.append(fn)

    # -- time ------------------------------------------------------------------------------------

    def advance(self, now: float | None = None) -> None:
        with self.lock:
            now = self.clock() if now is None else now
            while True:
                due = [p.next_block_s for p in self.pods.values() if p.running]
                due += [t for t, _ in self._pending]
                due += [n.kepler_back_s for n in self.nodes.values() if not n.kepler_up]
                due += [x.until_s for x in self.terminated]
                nxt = min(due, default=math.inf)
                if nxt > now:
                    break
                self._integrate(max(nxt, self.t))
                self._events_at(self.t)
            self._integrate(now)

    def _integrate(self, t: float) -> None:
        dt = t - self.t
        if dt <= 0:
            return
        for p in self.pods.values():
            if p.running:
                p.kepler_j += self.pod_power_w(p) * dt
                p.kepler_idle_j += self._idle_share_w(p) * dt
        for n in self.nodes.values():
            n.kepler_j += n.power_w * dt
            n.kepler_idle_j += n.curve.idle_w * dt
            self.energy_j += n.power_w * dt
        for w, fps in self.demand_fps.items():
            served = sum(p.delivered_fps for p in self.pods.values() if p.running and p.workload == w)
            self.offered_frames[w] = self.offered_frames.get(w, 0.0) + fps * dt
            self.delivered_frames[w] = self.delivered_frames.get(w, 0.0) + served * dt
        self.t = t

    def _events_at(self, t: float) -> None:
        for p in list(self.pods.values()):
            if p.running and p.next_block_s <= t:
                self._new_block(p, t)
        back = [(due, p) for due, p in self._pending if due <= t]
        self._pending = [(due, p) for due, p in self._pending if due > t]
        for _, p in back:
            self._add(p, t)
        for n in self.nodes.values():
            if not n.kepler_up and n.kepler_back_s <= t:
                self._kepler_starts(n)
        self.terminated = [x for x in self.terminated if x.until_s > t]
        self._update_nodes()

    def _new_block(self, p: ReplayPod, t: float) -> None:
        rng = random.Random(_seed(self.seed, p.namespace, p.name, p.uid, round(t, 3)))
        truth = self.truth_of(p)
        capacity = truth.capacity_fps if truth is not None else 0.0
        if p.workload in self.demand_fps:
            pass                          # its share of the workload's demand (`_share`)
        elif p.constant_fps is not None:
            p.offered_fps = p.constant_fps * (1.0 + rng.uniform(-0.01, 0.01))
        else:
            p.offered_fps = rng.uniform(*p.load) * capacity
        p.noise = rng.gauss(0.0, self.noise)
        p.next_block_s = t + rng.uniform(*p.block_s)
        self._serve(p)

    def _serve(self, p: ReplayPod) -> None:
        """The simulator's rule: serve what capacity allows, drop the rest."""
        truth = self.truth_of(p)
        capacity = truth.capacity_fps * p.capacity_factor if truth is not None else 0.0
        p.delivered_fps = min(p.offered_fps, capacity) if p.inference else 0.0
        p.dropped_fps = p.offered_fps - p.delivered_fps if p.inference else 0.0

    def _share(self, workload: str) -> None:
        """A workload's demand split over its running replicas in proportion to their capacity
        (a queue the replicas pop frames from): together they serve min(demand, capacity)."""
        if workload not in self.demand_fps:
            return
        pods = [p for p in self.pods.values() if p.running and p.inference and p.workload == workload]
        caps = [(self.truth_of(p).capacity_fps if self.truth_of(p) is not None else 0.0) * p.capacity_factor
                for p in pods]
        total = sum(caps)
        for p, cap in zip(pods, caps):
            p.offered_fps = self.demand_fps[workload] * cap / total if total > 0 else 0.0
            self._serve(p)

    def pod_power_w(self, p: ReplayPod) -> float:
        """Watts the replica draws now, noise included."""
        truth = self.truth_of(p)
        if truth is None:
            return p.power_w
        return truth.power_w(p.delivered_fps) * (1.0 + p.noise)

    def _idle_share_w(self, p: ReplayPod) -> float:
        n = self.nodes[p.node]
        return n.curve.idle_w * min(1.0, p.cpu_m / (1000.0 * n.cores))

    def _update_nodes(self) -> None:
        """Node utilisation and power as `simulations/physics.py` computes them."""
        for n in self.nodes.values():
            n.util = n.background_util
        for p in self.pods.values():
            if not p.running:
                continue
            n = self.nodes[p.node]
            share = min(1.0, p.cpu_m / (1000.0 * n.cores))
            truth = self.truth_of(p)
            if truth is None:
                n.util += share * 0.5
                continue
            full = truth.model.replica_power_w(truth.capacity_fps)
            standing = min(max(truth.model.intercept_w / full, 0.0), 1.0) if full > 0 else 0.0
            rho = p.delivered_fps / truth.capacity_fps if truth.capacity_fps > 0 else 0.0
            n.util += share * (standing + (1.0 - standing) * rho)
        for n in self.nodes.values():
            n.util = min(n.util, 1.0)
            n.power_w = float(n.curve.at(n.util))

    def _kepler_starts(self, n: ReplayNode) -> None:
        n.kepler_up, n.kepler_j, n.kepler_idle_j = True, 0.0, 0.0
        for p in self.pods.values():
            if p.node == n.name:
                p.kepler_j = p.kepler_idle_j = 0.0
        self.terminated = [x for x in self.terminated if x.node != n.name]

    # -- changing it -----------------------------------------------------------------------------

    def _next_uid(self, p: ReplayPod) -> str:
        self._uids += 1
        return f"{_seed(self.seed, p.namespace, p.name, self._uids):08x}-{self._uids:04x}-4e2a-9c1d-{self._uids:012x}"

    def _add(self, p: ReplayPod, t: float) -> None:
        if not p.uid:
            p.uid = self._next_uid(p)
        p.container_id = f"{_seed(p.uid, p.container):08x}" * 8
        p.kepler_j = p.kepler_idle_j = 0.0
        self.pods[p.key] = p
        if p.running:
            self._new_block(p, t)
        self._share(p.workload)
        self._update_nodes()
        for fn in self._listeners:
            fn("ADDED", p)

    def add_pod(self, pod: ReplayPod) -> ReplayPod:
        with self.lock:
            self.advance()
            self._add(pod, self.t)
            return pod

    def remove_pod(self, namespace: str, name: str) -> ReplayPod:
        with self.lock:
            self.advance()
            p = self.pods.pop((namespace, name))
            if p.running and p.inference:
                frozen = dataclasses.replace(p)
                self.terminated.append(Terminated(p.node, frozen, self.t + self.terminated_keep_s))
            self._share(p.workload)
            self._update_nodes()
            for fn in self._listeners:
                fn("DELETED", p)
            return p

    def move_pod(self, namespace: str, name: str, node: str, gap_s: float = 2.0, ip: str = "") -> None:
        """A StatefulSet pod rescheduled: gone from its node now, back on `node` `gap_s` later
        with the same name and a new UID (and IP)."""
        with self.lock:
            old = self.remove_pod(namespace, name)
            new = dataclasses.replace(old, node=node, uid="", ip=ip or old.ip, kepler_j=0.0, kepler_idle_j=0.0)
            self._pending.append((self.t + gap_s, new))

    def set_demand(self, workload: str, fps: float) -> None:
        """From now on `workload` is offered `fps` frames per second in total, shared by its
        running replicas (`_share`); frames offered and delivered are counted from here on."""
        with self.lock:
            self.advance()
            self.demand_fps[workload] = max(float(fps), 0.0)
            self._share(workload)
            self._update_nodes()

    def set_phase(self, namespace: str, name: str, phase: str) -> ReplayPod:
        """A pod's phase changes (a started replica becomes Running); listeners see MODIFIED."""
        with self.lock:
            self.advance()
            p = self.pods[(namespace, name)]
            p.phase = phase
            if p.running:
                self._new_block(p, self.t)
            self._share(p.workload)
            self._update_nodes()
            for fn in self._listeners:
                fn("MODIFIED", p)
            return p

    def scale_power(self, workload: str, node_class: str, factor: float) -> None:
        with self.lock:
            self.advance()
            self.truths[(workload, node_class)].power_factor = factor
            self._update_nodes()

    def invert_power(self, workload: str, node_class: str, inverted: bool = True) -> None:
        with self.lock:
            self.advance()
            self.truths[(workload, node_class)].inverted = inverted
            self._update_nodes()

    def saturate(self, namespace: str, name: str, capacity_factor: float) -> None:
        """The replica now serves at most `capacity_factor` of its pair's capacity (a noisy
        neighbour, thermal throttling); what it is offered beyond that is dropped."""
        with self.lock:
            self.advance()
            p = self.pods[(namespace, name)]
            p.capacity_factor = capacity_factor
            self._serve(p)
            self._update_nodes()

    def restart_kepler(self, node: str, down_s: float = 2.0) -> None:
        """The node's Kepler pods restart: their scrapes fail for `down_s`, then every counter of
        the node counts again from zero (one reset per exporter restart)."""
        with self.lock:
            self.advance()
            n = self.nodes[node]
            n.kepler_up, n.kepler_back_s = False, self.t + down_s


# -- exposition ---------------------------------------------------------------------------------

def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Exposition:
    """Prometheus text format 0.0.4: families in order, each with HELP and TYPE."""

    def __init__(self):
        self._families: dict[str, tuple[str, str, list[str]]] = {}

    def add(self, family: str, kind: str, help_text: str, labels: dict[str, str], value: float,
            name: str | None = None) -> None:
        lines = self._families.setdefault(family, (kind, help_text, []))[2]
        lab = ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items())
        lines.append(f"{name or family}{{{lab}}} {value:.6f}" if lab else f"{name or family} {value:.6f}")

    def text(self) -> str:
        out = []
        for family, (kind, help_text, lines) in self._families.items():
            out.append(f"# HELP {family} {help_text}")
            out.append(f"# TYPE {family} {kind}")
            out.extend(lines)
        return "\n".join(out) + "\n"


_INVALID_LABEL_CHAR = re.compile(r"[^a-zA-Z0-9_]")


def ksm_label(key: str) -> str:
    """kube-state-metrics' name for a Kubernetes label (its own sanitising: invalid characters to `_`)."""
    return "label_" + _INVALID_LABEL_CHAR.sub("_", key)


ZONES_010 = (("package", 1.0), ("core", 0.8), ("dram", 0.12))   # share of the package energy


def kepler_010(c: ReplayCluster, node: str) -> str:
    e = Exposition()
    n = c.nodes[node]
    const = {"node_name": node}
    path = "/sys/class/powercap/intel-rapl:0"
    for zone, share in ZONES_010:
        z = {"zone": zone, "path": path if zone == "package" else f"{path}:{'0' if zone == 'core' else '2'}"}
        e.add("kepler_node_cpu_joules_total", "counter", "Energy consumption of cpu at node level in joules",
              {**z, **const}, share * n.kepler_j)
        e.add("kepler_node_cpu_active_joules_total", "counter", "Energy consumption of cpu in active state",
              {**z, **const}, share * (n.kepler_j - n.kepler_idle_j))
        e.add("kepler_node_cpu_idle_joules_total", "counter", "Energy consumption of cpu in idle state",
              {**z, **const}, share * n.kepler_idle_j)
        e.add("kepler_node_cpu_watts", "gauge", "Power consumption of cpu at node level in watts",
              {**z, **const}, share * n.power_w)
    e.add("kepler_node_cpu_usage_ratio", "gauge", "CPU usage ratio of a node (value between 0.0 and 1.0)", const,
          n.util)

    def pod_series(p: ReplayPod, state: str, power_w: float) -> None:
        for zone, share in ZONES_010:
            labels = {"pod_id": p.uid, "pod_name": p.name, "pod_namespace": p.namespace, "state": state,
                      "zone": zone, **const}
            e.add("kepler_pod_cpu_joules_total", "counter", "Energy consumption of cpu at pod level in joules",
                  labels, share * p.kepler_j)
            e.add("kepler_pod_cpu_watts", "gauge", "Power consumption of cpu at pod level in watts", labels,
                  share * power_w)
            e.add("kepler_container_cpu_joules_total", "counter",
                  "Energy consumption of cpu at container level in joules",
                  {"container_id": p.container_id, "container_name": p.container, "runtime": "containerd",
                   "state": state, "zone": zone, "pod_id": p.uid, **const}, share * p.kepler_j)

    for p in c.pods.values():
        if p.node == node and p.running:
            pod_series(p, "running", c.pod_power_w(p))
    for x in c.terminated:
        if x.node == node:
            pod_series(x.pod, "terminated", 0.0)
    e.add("kepler_build_info", "gauge", "A metric with a constant '1' value labeled with version information",
          {"arch": "amd64", "branch": "main", "revision": "0000000", "version": "v0.10.2", "goversion": "go1.23.4",
           **const}, 1.0)
    return e.text()


def kepler_09(c: ReplayCluster, node: str) -> str:
    e = Exposition()
    n = c.nodes[node]
    components = (("package", 1.0), ("core", 0.8), ("dram", 0.12))
    dynamic_j = n.kepler_j - n.kepler_idle_j
    for comp, share in components + (("platform", 1.35),):
        for mode, joules in (("dynamic", dynamic_j), ("idle", n.kepler_idle_j)):
            labels = {"instance": node, "mode": mode}
            if comp != "platform":
                labels = {"package": "0", **labels}
            e.add(f"kepler_node_{comp}_joules_total", "counter", f"Aggregated RAPL value in {comp} in joules",
                  labels, share * joules)

    def container(name: str, namespace: str, pod_name: str, cid: str, dynamic: float, idle: float) -> None:
        for mode, joules in (("dynamic", dynamic), ("idle", idle)):
            labels = {"container_id": cid, "pod_name": pod_name, "container_name": name,
                      "container_namespace": namespace, "mode": mode}
            for comp, share in components:
                e.add(f"kepler_container_{comp}_joules_total", "counter", f"Aggregated RAPL value in {comp} in joules",
                      labels, share * joules)
            e.add("kepler_container_joules_total", "counter", "Aggregated RAPL Package + Uncore + DRAM + GPU + other "
                  "host components (platform - package - dram) in joules", labels, 1.12 * joules)

    pods_j = 0.0
    for p in c.pods.values():
        if p.node == node and p.running:
            container(p.container, p.namespace, p.name, p.container_id, p.kepler_j, p.kepler_idle_j)
            pods_j += p.kepler_j
    system_j = max(dynamic_j - pods_j, 0.0)
    container("system_processes", "system", "system_processes", "system_processes", system_j, 0.0)
    e.add("kepler_exporter_build_info", "gauge", "A metric with a constant '1' value labeled by version, revision, "
          "branch, and goversion from which kepler_exporter was built.",
          {"branch": "", "goversion": "go1.21.9", "revision": "", "version": "release-0.7.12"}, 1.0)
    return e.text()


def kube_state_metrics(c: ReplayCluster) -> str:
    e = Exposition()
    for p in sorted(c.pods.values(), key=lambda p: p.key):
        base = {"namespace": p.namespace, "pod": p.name, "uid": p.uid}
        node = c.nodes.get(p.node) if p.node else None
        e.add("kube_pod_info", "gauge", "[STABLE] Information about pod.",
              {**base, "host_ip": node.ip if node else "", "pod_ip": p.ip if p.node else "",
               "node": p.node or "", "created_by_kind": p.owner_kind, "created_by_name": p.owner_name,
               "priority_class": "", "host_network": "false"}, 1.0)
        allowed = {k: v for k, v in p.labels.items() if k in ("app", "wattwise.io/workload")}
        e.add("kube_pod_labels", "gauge", "[STABLE] Kubernetes labels converted to Prometheus labels.",
              {**base, **{ksm_label(k): v for k, v in sorted(allowed.items())}}, 1.0)
        for phase in ("Pending", "Succeeded", "Failed", "Unknown", "Running"):
            e.add("kube_pod_status_phase", "gauge", "[STABLE] The pods current phase.", {**base, "phase": phase},
                  1.0 if p.phase == phase else 0.0)
    for n in c.nodes.values():
        e.add("kube_node_info", "gauge", "[STABLE] Information about a cluster node.",
              {"node": n.name, "kernel_version": "6.8.0-1014", "os_image": "Ubuntu 24.04.1 LTS",
               "container_runtime_version": "containerd://1.7.22", "kubelet_version": "v1.30.5",
               "kubeproxy_version": "deprecated", "provider_id": f"aws:///{n.name}", "pod_cidr": "",
               "system_uuid": f"ec2{_seed(n.name):08x}", "internal_ip": n.ip}, 1.0)
        e.add("kube_node_labels", "gauge", "[STABLE] Kubernetes labels converted to Prometheus labels.",
              {"node": n.name, **{ksm_label(k): v for k, v in sorted(n.labels.items())}}, 1.0)
    return e.text()


def applications(c: ReplayCluster) -> str:
    """Every running inference pod's gauges on one page, with the target labels the Prometheus
    Operator's relabelling gives each pod's own target (`_operator_relabels`)."""
    e = Exposition()
    for p in sorted(c.pods.values(), key=lambda p: p.key):
        if p.running and p.inference:
            service = p.workload.split("/", 1)[-1]
            labels = {"namespace": p.namespace, "service": service, "pod": p.name, "container": p.container,
                      "job": service, "endpoint": "metrics", "instance": f"{p.ip}:{APP_PORT}"}
            e.add("infer_fps", "gauge", "Frames inferred per second by this inference engine", labels,
                  p.delivered_fps)
            e.add("drop_fps", "gauge", "Frames dropped per second by this inference engine", labels, p.dropped_fps)
    return e.text()


def application(c: ReplayCluster, p: ReplayPod) -> str:
    e = Exposition()
    e.add("infer_fps", "gauge", "Frames inferred per second by this inference engine", {}, p.delivered_fps)
    e.add("drop_fps", "gauge", "Frames dropped per second by this inference engine", {}, p.dropped_fps)
    return e.text()


# -- serving ------------------------------------------------------------------------------------

class ReplayExporter:
    """The exporters of `cluster` on 127.0.0.1:`port` (0: a free one), in a daemon thread.

    Targets: `/metrics/kepler/<node>` (Kepler 0.10's DaemonSet pod on that node),
    `/metrics/kepler-exporter/<node>` (Kepler 0.9's), `/metrics/kube-state-metrics`,
    `/metrics/app/<namespace>/<pod>/<uid>` (each running inference pod, by its address: a pod
    rescheduled under the same name is a new target). Service discovery:
    `/sd/<job>` answers Prometheus's http_sd format for each job. `schemas`: which Kepler
    DaemonSets run (both at once is a cluster mid-upgrade; each reader reads only its own)."""

    def __init__(self, cluster: ReplayCluster, schemas: Iterable[str] = SCHEMAS, port: int = 0):
        self.cluster = cluster
        self.schemas = tuple(schemas)
        unknown = set(self.schemas) - set(SCHEMAS)
        if unknown:
            raise ValueError(f"unknown Kepler schema(s) {sorted(unknown)}; choose from {SCHEMAS}")
        for n in cluster.nodes.values():
            for schema in self.schemas:
                n.kepler.setdefault(schema, f"{KEPLER_JOB[schema]}-{_seed(n.name, schema) % 36**5:05x}"[:21])
        self.scrapes: dict[str, int] = {}
        self.aborted = 0                  # answers the scraper did not wait for
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                try:
                    status, ctype, body = exporter._answer(self.path)
                except Exception as e:  # noqa: BLE001 - a bug here must show in the scrape, not kill the thread
                    status, ctype, body = 500, "text/plain", f"{type(e).__name__}: {e}\n"
                data = body.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):   # the scraper gave up (timeout, shutdown)
                    exporter.aborted += 1

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread: threading.Thread | None = None

    def start(self) -> ReplayExporter:
        self._thread = threading.Thread(target=self._server.serve_forever, name="replay-exporter", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- answers -------------------------------------------------------------------------------

    def _answer(self, path: str) -> tuple[int, str, str]:
        parts = path.split("?", 1)[0].strip("/").split("/")
        c = self.cluster
        if parts[0] == "sd" and len(parts) == 2:
            return 200, "application/json", json.dumps(self.targets(parts[1]))
        if parts[0] != "metrics" or len(parts) < 2:
            return 404, "text/plain", "not found\n"
        self.scrapes[parts[1]] = self.scrapes.get(parts[1], 0) + 1
        text = "text/plain; version=0.0.4; charset=utf-8"
        with c.lock:
            c.advance()
            if parts[1] in ("kepler", "kepler-exporter") and len(parts) == 3:
                schema = KEPLER_010 if parts[1] == "kepler" else KEPLER_09
                node = c.nodes.get(parts[2])
                if schema not in self.schemas or node is None:
                    return 404, "text/plain", "not found\n"
                if not node.kepler_up:
                    return 503, "text/plain", "kepler is restarting\n"
                return 200, text, (kepler_010 if schema == KEPLER_010 else kepler_09)(c, node.name)
            if parts[1] == "kube-state-metrics" and len(parts) == 2:
                return 200, text, kube_state_metrics(c)
            if parts[1] == "app-all" and len(parts) == 2:  # every inference pod on one target (`scrape_config`)
                return 200, text, applications(c)
            if parts[1] == "app" and len(parts) == 5:     # a pod's address: a rescheduled pod has a new one
                p = c.pods.get((parts[2], parts[3]))
                if p is None or not p.running or not p.inference or p.uid != parts[4]:
                    return 404, "text/plain", "no such pod\n"
                return 200, text, application(c, p)
        return 404, "text/plain", "not found\n"

    def targets(self, job: str) -> list[dict]:
        """http_sd target groups, with the `__meta_kubernetes_*` labels Kubernetes discovery would give."""
        c = self.cluster
        address = f"127.0.0.1:{self.port}"
        groups = []

        def group(path: str, namespace: str, pod: str, node: str, pod_ip: str, service: str, container: str,
                  port: int, port_name: str, app_name: str) -> dict:
            return {"targets": [address], "labels": {
                "__metrics_path__": path, "__meta_kubernetes_namespace": namespace,
                "__meta_kubernetes_pod_name": pod, "__meta_kubernetes_pod_node_name": node,
                "__meta_kubernetes_pod_ip": pod_ip, "__meta_kubernetes_pod_container_name": container,
                "__meta_kubernetes_pod_container_port_number": str(port),
                "__meta_kubernetes_endpoint_port_name": port_name, "__meta_kubernetes_service_name": service,
                "__meta_kubernetes_service_label_app_kubernetes_io_name": app_name,
                "__meta_kubernetes_endpoint_address_target_kind": "Pod",
                "__meta_kubernetes_endpoint_address_target_name": pod}}

        with c.lock:
            c.advance()
            if job in ("kepler", "kepler-exporter"):
                schema = KEPLER_010 if job == "kepler" else KEPLER_09
                if schema in self.schemas:
                    for n in c.nodes.values():
                        ip = f"10.244.{_seed(n.name) % 200}.{2 + _seed(schema) % 50}"
                        groups.append(group(f"/metrics/{job}/{n.name}", KEPLER_NAMESPACE if schema == KEPLER_010
                                            else MONITORING_NAMESPACE, n.kepler[schema], n.name, ip, job,
                                            job if schema == KEPLER_010 else "kepler-exporter",
                                            KEPLER_PORT[schema], "http", job))
            elif job == KSM_JOB:
                groups.append(group("/metrics/kube-state-metrics", MONITORING_NAMESPACE,
                                    "kube-state-metrics-6d8f9b7c5d-q2w4x", "clx-plain-1", "10.244.3.17", KSM_JOB,
                                    "kube-rbac-proxy-main", 8443, "https-main", KSM_JOB))
            elif job == "app":
                for p in sorted(c.pods.values(), key=lambda p: p.key):
                    if p.running and p.inference:
                        service = p.workload.split("/", 1)[-1]
                        groups.append(group(f"/metrics/app/{p.namespace}/{p.name}/{p.uid}", p.namespace, p.name, p.node,
                                            p.ip, service, p.container, APP_PORT, "metrics", service))
        return groups


# -- Prometheus's configuration -----------------------------------------------------------------

def _operator_relabels(job_from: str, endpoint: str, drop: str | None = None,
                       instance_from_node: bool = False) -> list[dict]:
    """The relabelling the Prometheus Operator generates for a ServiceMonitor endpoint (target
    labels namespace, service, pod, container, job, endpoint), then the endpoint's own
    `relabelings`. `instance` is set to the pod's address, which Kubernetes discovery's
    `__address__` would be (here every target's real address is the replay exporter's)."""
    rules = [
        {"source_labels": ["__meta_kubernetes_endpoint_address_target_kind",
                           "__meta_kubernetes_endpoint_address_target_name"],
         "separator": ";", "regex": "Pod;(.*)", "replacement": "${1}", "target_label": "pod"},
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "service"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
        {"source_labels": [job_from], "target_label": "job", "replacement": "${1}"},
        {"target_label": "endpoint", "replacement": endpoint},
        {"source_labels": ["__meta_kubernetes_pod_ip", "__meta_kubernetes_pod_container_port_number"],
         "separator": ":", "target_label": "instance"},
    ]
    if instance_from_node:    # Kepler 0.9's ServiceMonitor
        rules.append({"action": "replace", "regex": "(.*)", "replacement": "$1",
                      "source_labels": ["__meta_kubernetes_pod_node_name"], "target_label": "instance"})
    if drop:                  # kube-state-metrics' ServiceMonitor
        rules.append({"action": "labeldrop", "regex": drop})
    return rules


def scrape_config(exporter: ReplayExporter, interval_s: float = 1.0, app_interval_s: float | None = None) -> str:
    """prometheus.yml scraping every exporter of `exporter` every `interval_s` (JSON is YAML).

    `app_interval_s` (an accelerated clock): the inference pods instead from one target
    (`/metrics/app-all`, the labels their own targets would get) every `app_interval_s`. Prometheus
    hands discovered targets to its scrapers at most every 5 s (a constant of its discovery
    manager), so a pod's own target shows its gauges up to 5 wall s after it starts: minutes at
    real time, but 48 simulated minutes at 576x, during which the pod's share of the demand is
    missing from the sum serve reads."""
    interval = f"{int(interval_s * 1000)}ms"
    app_label = "__meta_kubernetes_service_label_app_kubernetes_io_name"

    def job(name: str, sd: str, relabels: list[dict], honor: bool) -> dict:
        return {"job_name": name, "honor_labels": honor, "scrape_interval": interval, "scrape_timeout": interval,
                "http_sd_configs": [{"url": f"{exporter.url}/sd/{sd}", "refresh_interval": "1s"}],
                "relabel_configs": relabels}

    jobs = []
    if KEPLER_010 in exporter.schemas:
        jobs.append(job("serviceMonitor/kepler/kepler/0", "kepler", _operator_relabels(app_label, "http"), False))
    if KEPLER_09 in exporter.schemas:
        jobs.append(job("serviceMonitor/monitoring/kepler-exporter/0", "kepler-exporter",
                        _operator_relabels(app_label, "http", instance_from_node=True), False))
    jobs.append(job("serviceMonitor/monitoring/kube-state-metrics/0", KSM_JOB,
                    _operator_relabels(app_label, "https-main", drop="(pod|service|endpoint|namespace)"), True))
    if app_interval_s is None:
        jobs.append(job("serviceMonitor/retail/inference/0", "app",
                        _operator_relabels("__meta_kubernetes_service_name", "metrics"), False))
    else:
        every = f"{int(app_interval_s * 1000)}ms"
        jobs.append({"job_name": "serviceMonitor/retail/inference/0", "honor_labels": True, "scrape_interval": every,
                     "scrape_timeout": every, "metrics_path": "/metrics/app-all",
                     "static_configs": [{"targets": [f"127.0.0.1:{exporter.port}"]}]})
    return json.dumps({"global": {"scrape_interval": interval, "scrape_timeout": interval,
                                  "evaluation_interval": "15s"}, "scrape_configs": jobs}, indent=1) + "\n"
