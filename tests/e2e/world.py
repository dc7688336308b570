"""The replayed cluster of the end-to-end learning tests, and what runs against it.

The recorded Kubernetes objects (`tests/data/kube/`, nodes from `tests/scheduler/data/nodes.json`)
plus three workloads' pods, served by a `FakeKubeApi`; the same pods in a `ReplayCluster` whose
truth is the product's own hardware priors (`models/priors.prior_model` for each workload and node
class as `cluster_nodes`/`cluster_workloads` read them from those objects, so the names are the
ones `wattwise serve` plans with), times a factor per pair; a `ReplayExporter` and a real
Prometheus scraping it every second. Pods added, moved or removed in the replay are added, moved or
removed in the fake API too (as the API server would show them).

Workloads (namespace `retail`):
- `checkout-cams` (the recorded ScaledObject and Deployment, TDX, 48 streams): five pods on
  spr-tdx-1 (class spr-amx-tdx) and five on spr-tdx-2 (class m7i-metal-48xl, no class label: named
  from its instance type), the recorded pending one. Truth: the prior on spr-amx-tdx, 1.15x the
  prior on m7i-metal-48xl (an older model build there).
- `parking-lpr` (a StatefulSet, not confidential, 4 CPU, 2 streams): `parking-lpr-0` starts on
  icx-sgx-1 (icx-sgx) and is the pod that moves; -1..-4 stay on icx-sgx-1, -5..-8 on milan-snp-1
  (milan-snp). Per frame milan-snp costs about half what icx-sgx does.
- `lobby-cams` (a Deployment pinned to spr-tdx-pending by its nodeSelector, 4 CPU, 4 streams): three
  pods each offered a steady 20 fps, far below their 23.7 fps capacity: its pair never gets enough
  FPS spread to be fitted, so it plans with its prior's capacity, and a replica that slows down
  shows only through its dropped frames.
Offered load (per replica): redrawn every 6-12 s between 0.15x and 1.2x of the replica's capacity,
so every pair sees a wide FPS range and some saturation within a minute.
"""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.replay_exporter import (SCHEMAS, PairTruth, ReplayCluster, ReplayExporter, ReplayNode, ReplayPod,
                                       scrape_config)
from tests.kube_fake import RESOURCES, FakeKubeApi, recorded_list
from tests.prometheus_fixture import RunningPrometheus, start_prometheus
from wattwise.kube.inputs import scaler_address_matcher
from wattwise.models.admission import runtime_class_scheduling
from wattwise.models.cluster_nodes import cluster_nodes
from wattwise.models.cluster_workloads import cluster_workloads
from wattwise.models.priors import prior_model
from wattwise.models.workload import Demand
from wattwise.models.workload_build import build_workload
from wattwise.telemetry.grid_zones import bundled_cloud_regions, bundled_measured_curves

NS = "retail"
CHECKOUT, PARKING, LOBBY = f"{NS}/checkout-cams", f"{NS}/parking-lpr", f"{NS}/lobby-cams"
SPR, M7I, ICX, MILAN = "spr-amx-tdx", "m7i-metal-48xl", "icx-sgx", "milan-snp"
MOVER = "parking-lpr-0"
FACTORS = {(CHECKOUT, M7I): 1.15}
RS_HASH = {"checkout-cams": "7c9d8f6b4", "lobby-cams": "5d9f7c6b8"}


def _suffix(i: int, salt: str) -> str:
    """Five characters, like a ReplicaSet pod's (deterministic)."""
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    n = (i + 1) * 7919 + sum(map(ord, salt)) * 104729
    return "".join(alphabet[(n // len(alphabet) ** k) % len(alphabet)] for k in range(5))


def _objects() -> dict[str, dict]:
    """Every resource's list: the recorded ones plus the parking-lpr StatefulSet, the lobby-cams
    Deployment and their ScaledObjects (pods are added from the replay)."""
    lists = {name: copy.deepcopy(recorded_list(name)) for name, *_ in RESOURCES}
    checkout_so = lists["scaledobjects"]["items"][0]
    checkout_dep = lists["deployments"]["items"][0]

    def workload(name: str, kind: str, streams: int, node_selector: dict | None = None) -> None:
        obj = copy.deepcopy(checkout_dep)
        obj["metadata"].update(name=name, uid=f"uid-{kind.lower()}-{name}", resourceVersion="918700")
        obj["metadata"].pop("annotations", None)
        obj["metadata"].pop("managedFields", None)
        obj["spec"]["selector"] = {"matchLabels": {"app": name}}
        template = obj["spec"]["template"]
        template["metadata"]["labels"] = {"app": name, "wattwise.io/workload": name}
        spec = template["spec"]
        spec.pop("runtimeClassName", None)
        spec["containers"][0]["resources"] = {"requests": {"cpu": "4", "memory": "8Gi"},
                                              "limits": {"cpu": "4", "memory": "8Gi"}}
        if node_selector:
            spec["nodeSelector"] = node_selector
        if kind == "StatefulSet":
            obj["kind"] = "StatefulSet"
            obj["spec"].pop("strategy", None)
            obj["spec"].pop("progressDeadlineSeconds", None)
            obj["spec"]["serviceName"] = name
            obj["spec"]["replicas"] = 9
            obj.pop("status", None)
        obj.pop("apiVersion", None)
        obj.pop("kind", None)
        lists["statefulsets" if kind == "StatefulSet" else "deployments"]["items"].append(obj)
        so = copy.deepcopy(checkout_so)
        so["metadata"].update(name=name, uid=f"uid-so-{name}", resourceVersion="918701")
        so["metadata"].pop("annotations", None)
        so["metadata"].pop("managedFields", None)
        so["spec"]["scaleTargetRef"] = {"apiVersion": "apps/v1", "kind": kind, "name": name}
        so["spec"]["triggers"][0]["metadata"] = {**so["spec"]["triggers"][0]["metadata"], "workload": name,
                                                 "streams": str(streams)}
        lists["scaledobjects"]["items"].append(so)

    workload("parking-lpr", "StatefulSet", 2)
    workload("lobby-cams", "Deployment", 4, {"kubernetes.io/hostname": "spr-tdx-pending"})
    return lists


def _truths(lists: dict[str, dict]):
    """The planner's view of the recorded objects (nodes and classes, workloads) and each pair's prior."""
    nodes = cluster_nodes(lists["nodes"]["items"], lists["pods"]["items"], lists["runtimeclasses"]["items"],
                          cloud_regions=bundled_cloud_regions(), measured_curves=bundled_measured_curves())
    targets = {}
    for kind, name in (("Deployment", "deployments"), ("StatefulSet", "statefulsets")):
        for obj in lists[name]["items"]:
            targets[(kind, obj["metadata"]["namespace"], obj["metadata"]["name"])] = obj
    read = cluster_workloads(lists["scaledobjects"]["items"], targets, nodes.runtime_overheads,
                             is_ours=scaler_address_matcher("wattwise-scaler"),
                             runtime_scheduling=runtime_class_scheduling(lists["runtimeclasses"]["items"]))
    truths, workloads = {}, {}
    for request in read.requests:
        w = build_workload(request, read.bases[request.workload_key], Demand())
        workloads[w.key] = w
        for name, cls in nodes.node_classes.items():
            prior = prior_model(w, cls)
            if prior is not None:
                truths[(w.key, name)] = PairTruth(prior, power_factor=FACTORS.get((w.key, name), 1.0))
    return nodes, workloads, truths


def _ip(node: dict) -> str:
    return next((a["address"] for a in (node.get("status") or {}).get("addresses") or () if a["type"] == "InternalIP"),
                "10.0.0.1")


def pod_json(p: ReplayPod, template: dict, runtime_class: str | None) -> dict:
    """The Pod object the API server would serve for a replay pod (its shape from a recorded pod)."""
    obj = copy.deepcopy(template)
    meta = obj["metadata"]
    meta.update(name=p.name, namespace=p.namespace, uid=p.uid, labels=dict(p.labels))
    meta.pop("generateName", None)
    meta["ownerReferences"] = [{"apiVersion": "apps/v1", "blockOwnerDeletion": True, "controller": True,
                                "kind": p.owner_kind, "name": p.owner_name, "uid": f"uid-owner-{p.owner_name}"}]
    spec = obj["spec"]
    spec["containers"][0]["resources"] = {"requests": {"cpu": f"{p.cpu_m}m", "memory": "8Gi"},
                                          "limits": {"cpu": f"{p.cpu_m}m", "memory": "8Gi"}}
    spec.pop("volumes", None)
    spec["containers"][0].pop("volumeMounts", None)
    if runtime_class:
        spec["runtimeClassName"] = runtime_class
    else:
        spec.pop("runtimeClassName", None)
        spec.pop("overhead", None)
    if p.node:
        spec["nodeName"] = p.node
    else:
        spec.pop("nodeName", None)
    status = obj["status"]
    status["phase"] = p.phase
    status["podIP"] = p.ip
    status["podIPs"] = [{"ip": p.ip}]
    status["containerStatuses"][0]["containerID"] = f"containerd://{p.container_id}"
    return obj


@dataclass
class World:
    api: FakeKubeApi
    cluster: ReplayCluster
    exporter: ReplayExporter
    prometheus: RunningPrometheus
    workloads: dict
    node_classes: dict
    started_s: float
    workdir: Path

    def stop(self) -> None:
        self.prometheus.stop()
        self.exporter.stop()
        self.api.stop()

    def truth(self, workload: str, node_class: str) -> PairTruth:
        return self.cluster.truths[(workload, node_class)]


def build(workdir: Path, schemas=SCHEMAS, seed: int = 14) -> World:
    """Start the fake API, the replay (with its pods), the exporter and a Prometheus scraping it."""
    workdir.mkdir(parents=True, exist_ok=True)
    lists = _objects()
    planner_nodes, workloads, truths = _truths(lists)
    by_name = {n["metadata"]["name"]: n for n in lists["nodes"]["items"]}
    nodes = []
    for n in planner_nodes.nodes:
        cls = planner_nodes.node_classes[n.node_class]
        nodes.append(ReplayNode(n.name, n.node_class, cls.power, cls.cores,
                                dict(by_name[n.name]["metadata"].get("labels") or {}), _ip(by_name[n.name])))
    cluster = ReplayCluster(nodes, truths, seed=seed)

    recorded = {p["metadata"]["name"]: p for p in lists["pods"]["items"]}
    template = recorded["checkout-cams-7c9d8f6b4-2xq8m"]
    runtime_class = {CHECKOUT: "kata-qemu-tdx"}
    replay_pods: list[ReplayPod] = []

    def inference(workload: str, name: str, node: str | None, owner_kind: str, owner: str, uid: str = "",
                  phase: str = "Running", **kw) -> None:
        short = workload.split("/", 1)[1]
        replay_pods.append(ReplayPod(NS, name, node, uid, ip=f"10.244.{len(replay_pods) % 200}.{10 + len(replay_pods)}",
                                     labels={"app": short, "wattwise.io/workload": short}, owner_kind=owner_kind,
                                     owner_name=owner, cpu_m=4000, workload=workload, phase=phase, **kw))

    for name in ("checkout-cams-7c9d8f6b4-2xq8m", "checkout-cams-7c9d8f6b4-h5k2p", "checkout-cams-7c9d8f6b4-9wz4t"):
        p = recorded[name]
        node = (p.get("spec") or {}).get("nodeName")
        inference(CHECKOUT, name, node, "ReplicaSet", "checkout-cams-7c9d8f6b4", uid=p["metadata"]["uid"],
                  phase="Running" if node else "Pending")
    for node in ("spr-tdx-1", "spr-tdx-2"):
        for i in range(4):
            inference(CHECKOUT, f"checkout-cams-7c9d8f6b4-{_suffix(i, node)}", node, "ReplicaSet",
                      "checkout-cams-7c9d8f6b4")
    for i in range(9):
        node = "icx-sgx-1" if i <= 4 else "milan-snp-1"
        inference(PARKING, f"parking-lpr-{i}", node, "StatefulSet", "parking-lpr")
    for i in range(3):
        inference(LOBBY, f"lobby-cams-{RS_HASH['lobby-cams']}-{_suffix(i, 'lobby')}", "spr-tdx-pending", "ReplicaSet",
                  f"lobby-cams-{RS_HASH['lobby-cams']}", constant_fps=20.0)
    others = []
    for name, p in recorded.items():
        if p["metadata"]["labels"].get("wattwise.io/workload"):
            continue
        meta, spec, status = p["metadata"], p.get("spec") or {}, p.get("status") or {}
        owner = (meta.get("ownerReferences") or [{}])[0]
        others.append(ReplayPod(meta["namespace"], name, spec.get("nodeName"), meta["uid"], ip=status.get("podIP", ""),
                                labels=dict(meta.get("labels") or {}), owner_kind=owner.get("kind", ""),
                                owner_name=owner.get("name", ""), cpu_m=500, container=spec["containers"][0]["name"],
                                inference=False, phase=status.get("phase", "Running"), power_w=6.0))

    # the API server's pods: the recorded ones (h5k2p now ready) and ours
    pods = {p["metadata"]["name"]: p for p in lists["pods"]["items"]}
    for p in replay_pods + others:
        cluster.add_pod(p)
    for p in replay_pods:
        if p.name not in pods or p.name == "checkout-cams-7c9d8f6b4-h5k2p":
            pods[p.name] = pod_json(p, template, runtime_class.get(p.workload))
    lists["pods"]["items"] = list(pods.values())
    api = FakeKubeApi(lists=lists).start()

    def mirror(kind: str, p: ReplayPod) -> None:
        if p.inference:
            api.emit("pods", kind, pod_json(p, template, runtime_class.get(p.workload)))
    cluster.on_change(mirror)

    exporter = ReplayExporter(cluster, schemas).start()
    try:
        prom = start_prometheus(None, workdir / "prometheus", config_text=scrape_config(exporter, 1.0))
    except Exception:
        exporter.stop()
        api.stop()
        raise
    return World(api, cluster, exporter, prom, workloads, dict(planner_nodes.node_classes), time.time(), workdir)


class Recorder:
    """Polls a served `GET /plan` every `every_s` in a thread and keeps what the tests read."""

    def __init__(self, served, every_s: float = 0.5):
        self.served = served
        self.every_s = every_s
        self.plans: list[tuple[float, dict]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="plan-recorder")

    def start(self) -> Recorder:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.plans.append((time.time(), self.served.get("/plan")))
            except Exception as e:  # noqa: BLE001 - not up yet, or stopping: kept for the failure message
                self.errors.append(f"{type(e).__name__}: {e}")
            self._stop.wait(self.every_s)

    def latest(self) -> dict | None:
        return self.plans[-1][1] if self.plans else None
