"""The live control loop at cluster scale: the fake Kubernetes API (tests/kube_fake.py) serving
1,000 nodes, 100 ScaledObjects with their Deployments and 10,000 pods, and WattWise following it.

    .venv/bin/python benchmarks/live_loop_bench.py           # full size: about 4.5 minutes on 2 cores
    .venv/bin/python benchmarks/live_loop_bench.py --nodes 100 --scaled-objects 10 --pods 1000 --events 1000
    .venv/bin/python benchmarks/live_loop_bench.py --hours 0.25 --refreshes 10       # full size, shorter

What it measures, on the WattWise side, wired in this process as `wattwise serve --scaler
--kubeconfig ... --plan-inline` wires it (KubeCluster, serve_cli's ClusterInventory and
ClusterRegistry, `build_scaler` with an InlinePlanner; the gRPC server is built, not started;
the refresher's thread is not started: this script calls `refresh_once` as that thread would, with
an injected clock that advances one refresh interval per refresh):

1. first plan: from creating the KubeCluster until the first plan (every resource listed and
   synced, as serve's `_first_plan` waits, then one refresh). Imports are done before the clock
   starts. The lists' time includes the fake's own paging (it filters and copies every page).
2. one refresh (inputs plus plan), median and p95 over --refreshes refreshes, with a few pod
   MODIFIED events delivered through the watch before each (and applied to the stores before the
   clock starts): forced (`refresh_once(force=True)`: the planner runs every time) and gated
   (`refresh_once()`: the core's re-plan gate decides), interleaved so both see the same noise.
   Target: p95 <= 1 s.
3. resident memory (VmRSS of this process, after a full garbage collection) before and after
   --hours simulated hours of watch events: per hour --events pod events (status updates,
   readiness flips, pods replaced) and a status update of every node every --heartbeat-s
   (kubelet's nodeStatusReportFrequency, 5 min), delivered as fast as the fake can send them,
   with a gated refresh every --refresh-s of simulated time in between, as the refresher would.
   Target: flat. Python's allocated blocks are printed beside RSS: they count live objects,
   where RSS also holds what the allocator keeps after a peak (a re-plan's).
Then a cProfile of one forced refresh: where its time goes, by part and by own time.

The fake API runs in a process of its own (so its objects and event history are not in the RSS
measured, and it does not share this process's GIL); it is idle while a refresh is timed. Before
the refreshes are measured the WattWise pods are made to match the first plan (each workload's
replicas bound where the plan put them, other tenants' pods topped up to --pods in all), as in a
cluster that has converged, and again after every refresh that changed the plan (as KEDA and the
scheduler would; those pod events are counted and printed); otherwise the gate would re-plan for
"pods waiting" every minute. Machines here are shared: compare within one run, quote medians.
"""

from __future__ import annotations

import argparse
import cProfile
import copy
import gc
import io
import json
import logging
import multiprocessing
import pstats
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.kube_fake import DATA, FakeKubeApi, _key, recorded_list  # noqa: E402
from wattwise.scaler.planning import InlinePlanner  # noqa: E402

SCALER_ADDRESS = "wattwise-scaler.wattwise-system.svc:6000"
MANAGED_LABEL = "wattwise.io/workload"
NAMESPACES = ("retail", "parking", "transit", "stadium", "warehouse", "campus", "airport", "logistics", "city-ops",
              "hospital")
TENANTS = ("payments", "web", "search", "batch", "analytics", "crm", "billing", "media")
REGIONS = ("eu-central-1", "eu-west-1", "eu-north-1", "us-west-1", "us-west-2", "us-east-1")
START_S = 1_749_718_800.0     # 2025-06-12T09:00:00Z: the simulated clock's start


# -- the cluster's objects, derived from the recorded JSON -------------------------------------------

def _fleet() -> list[tuple[float, dict, bool]]:
    """(share, template node, GPU taint) of the fleet: tests/scheduler/data/nodes.json's classes
    (TDX ready, pending and cordoned; SGX; SEV-SNP; plain; H100 confidential) and the tainted
    L40S node of tests/data/kube."""
    by_name = {n["metadata"]["name"]: n for n in recorded_list("nodes")["items"]}
    l40s = json.loads((DATA / "kube" / "core-node-gpu-tainted.json").read_text())
    return [(0.18, by_name["spr-tdx-1"], False), (0.14, by_name["spr-tdx-2"], False),
            (0.03, by_name["spr-tdx-pending"], False), (0.02, by_name["spr-tdx-cordoned"], False),
            (0.10, by_name["icx-sgx-1"], False), (0.16, by_name["milan-snp-1"], False),
            (0.27, by_name["clx-plain-1"], False), (0.02, by_name["h100-cc-1"], False),
            (0.02, by_name["h100-cc-1"], True), (0.06, l40s, False)]


GPU_TAINT = {"effect": "NoSchedule", "key": "nvidia.com/gpu", "value": "present"}


def make_nodes(n: int, rng: random.Random) -> list[dict]:
    fleet = _fleet()
    shares = [s for s, _, _ in fleet]
    nodes = []
    for i in range(n):
        _, template, taint = fleet[rng.choices(range(len(fleet)), shares)[0]] if i >= len(fleet) else fleet[i]
        node = copy.deepcopy(template)
        prefix = template["metadata"]["name"].rsplit("-", 1)[0]
        name = f"{prefix}-{i:04d}"
        meta, labels = node["metadata"], node["metadata"]["labels"]
        region = REGIONS[rng.randrange(len(REGIONS))]
        meta.update(name=name, uid=f"5a7c{i:04x}-0d1e-4f2a-9b3c-{i:012x}", resourceVersion="1")
        labels["kubernetes.io/hostname"] = name
        if "wattwise.io/grid-zone" not in labels:      # the L40S nodes keep their label: the rest by region
            labels["topology.kubernetes.io/region"] = region
            labels["topology.kubernetes.io/zone"] = region + "abc"[rng.randrange(3)]
        meta.get("annotations", {}).pop("csi.volume.kubernetes.io/nodeid", None)
        spec = node.setdefault("spec", {})
        spec.update(podCIDR=f"10.{64 + i // 250}.{i % 250}.0/24", podCIDRs=[f"10.{64 + i // 250}.{i % 250}.0/24"],
                    providerID=f"metal://{name}")
        if taint:
            spec["taints"] = spec.get("taints", []) + [dict(GPU_TAINT)]
        node["status"]["addresses"] = [{"address": f"10.{i // 250}.{i % 250}.11", "type": "InternalIP"},
                                       {"address": name, "type": "Hostname"}]
        node.pop("apiVersion", None)
        node.pop("kind", None)
        nodes.append(node)
    return nodes


def make_workloads(n: int, rng: random.Random) -> tuple[list[dict], list[dict], list[dict]]:
    """n ScaledObjects (an external trigger naming wattwise-scaler, `streams` metadata) and their
    Deployments: 40% kata-qemu-tdx, 20% kata-qemu-snp, 35% plain, 5% on a GPU (tolerating the
    GPU taint). Returns (scaled objects, deployments, workload descriptions)."""
    so_template = recorded_list("scaledobjects")["items"][0]
    deploy_template = recorded_list("deployments")["items"][0]
    scaled_objects, deployments, workloads = [], [], []
    for i in range(n):
        ns = NAMESPACES[i % len(NAMESPACES)]
        name = f"cams-{i:03d}"
        kind = ("tdx", "tdx", "snp", "plain", "plain", "plain", "plain", "tdx", "snp", "plain")[i % 10]
        if i % 20 == 19:
            kind = "gpu"
        runtime = {"tdx": "kata-qemu-tdx", "snp": "kata-qemu-snp"}.get(kind)
        cpu, memory = rng.choice((("2", "4Gi"), ("4", "8Gi"), ("4", "8Gi"), ("6", "12Gi")))
        d = copy.deepcopy(deploy_template)
        d["metadata"].update(name=name, namespace=ns, uid=f"d0{i:06x}-6a1c-4d8e-b7f5-{i:012x}", resourceVersion="1",
                             labels={"app": name, "app.kubernetes.io/part-of": f"{ns}-vision"})
        d["spec"]["selector"] = {"matchLabels": {"app": name}}
        template = d["spec"]["template"]
        template["metadata"]["labels"] = {"app": name, MANAGED_LABEL: name}
        pod_spec = template["spec"]
        container = pod_spec["containers"][0]
        container["resources"] = {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": cpu, "memory": memory}}
        if runtime:
            pod_spec["runtimeClassName"] = runtime
        else:
            pod_spec.pop("runtimeClassName", None)
        if kind == "gpu":
            for r in ("requests", "limits"):
                container["resources"][r]["nvidia.com/gpu"] = "1"
            pod_spec["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
        so = copy.deepcopy(so_template)
        so["metadata"].update(name=name, namespace=ns, uid=f"50{i:06x}-2c4e-4b1a-8d3f-{i:012x}", resourceVersion="1",
                              labels={"scaledobject.keda.sh/name": name})
        so["metadata"].pop("annotations", None)
        so["spec"]["scaleTargetRef"]["name"] = name
        so["spec"]["minReplicaCount"] = 1
        so["spec"]["maxReplicaCount"] = 60
        metadata = {"scalerAddress": SCALER_ADDRESS, "workload": name, "streams": str(rng.randint(4, 64))}
        if i % 3 == 0:
            metadata["fpsPerStream"] = str(rng.choice((5, 10, 15)))
        so["spec"]["triggers"] = [{"type": "external", "metadata": metadata}]
        scaled_objects.append(so)
        deployments.append(d)
        workloads.append({"namespace": ns, "name": name, "runtime": runtime, "cpu": cpu, "memory": memory,
                          "gpu": kind == "gpu"})
    return scaled_objects, deployments, workloads


class PodMaker:
    """Pods as the API server sends them, from tests/data/kube/pods.json's: WattWise replicas (the
    checkout-cams pod), DaemonSet pods (Kepler, node agents: the Kepler and CoreDNS pods) and
    other tenants' pods (the ledger-db pod), each with a new name."""

    def __init__(self, rng: random.Random):
        pods = {p["metadata"]["name"]: p for p in recorded_list("pods")["items"]}
        self.replica = pods["checkout-cams-7c9d8f6b4-2xq8m"]
        self.kepler = pods["kepler-exporter-x7r2k"]
        self.agent = pods["coredns-5d78c9869d-7mzxk"]
        self.tenant = pods["ledger-db-0"]
        self.rng = rng
        self.serial = 0

    def _pod(self, template: dict, namespace: str, name: str, labels: dict, node: str | None) -> dict:
        self.serial += 1
        pod = copy.deepcopy(template)
        meta = pod["metadata"]
        meta.update(name=name, namespace=namespace, labels=labels, resourceVersion="1",
                    uid=f"9e{self.serial:06x}-3b5d-4c7e-a1f2-{self.serial:012x}")
        pod["spec"]["nodeName"] = node
        status = pod["status"]
        status["hostIP"] = f"10.{self.serial % 200}.{self.serial % 250}.11"
        status["podIP"] = f"10.244.{(self.serial // 250) % 250}.{self.serial % 250}"
        status["podIPs"] = [{"ip": status["podIP"]}]
        return pod

    def suffix(self) -> str:
        return "".join(self.rng.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))

    def replica_pod(self, w: dict, node: str) -> dict:
        pod = self._pod(self.replica, w["namespace"], f"{w['name']}-7c9d8f6b4-{self.suffix()}",
                        {"app": w["name"], "pod-template-hash": "7c9d8f6b4", MANAGED_LABEL: w["name"]}, node)
        spec = pod["spec"]
        res = {"cpu": w["cpu"], "memory": w["memory"]}
        if w["gpu"]:
            res["nvidia.com/gpu"] = "1"
        spec["containers"][0]["resources"] = {"requests": dict(res), "limits": dict(res)}
        spec["containers"][0]["volumeMounts"][0]["name"] = pod["metadata"]["name"][-20:]
        if w["runtime"]:
            spec["runtimeClassName"] = w["runtime"]
        else:
            spec.pop("runtimeClassName", None)
            spec.pop("overhead", None)
        pod["metadata"]["ownerReferences"][0]["name"] = f"{w['name']}-7c9d8f6b4"
        return pod

    def daemon_pod(self, kind: int, node: str) -> dict:
        if kind == 0:
            return self._pod(self.kepler, "monitoring", f"kepler-exporter-{self.suffix()}",
                             dict(self.kepler["metadata"]["labels"]), node)
        return self._pod(self.agent, "kube-system", f"node-agent-{self.suffix()}", {"k8s-app": "node-agent"}, node)

    def tenant_pod(self, node: str) -> dict:
        ns = self.rng.choice(TENANTS)
        app = f"{ns}-svc-{self.rng.randrange(40):02d}"
        pod = self._pod(self.tenant, ns, f"{app}-6f8b9c7d54-{self.suffix()}",
                        {"app.kubernetes.io/name": app, "pod-template-hash": "6f8b9c7d54"}, node)
        cpu, memory = self.rng.choice((("250m", "512Mi"), ("500m", "1Gi"), ("1", "2Gi"), ("2", "4Gi")))
        pod["spec"]["containers"][0]["resources"] = {"requests": {"cpu": cpu, "memory": memory}}
        pod["metadata"]["ownerReferences"][0].update(kind="ReplicaSet", name=f"{app}-6f8b9c7d54")
        return pod


# -- the fake API server, in a process of its own ----------------------------------------------------

class IndexedFakeKubeApi(FakeKubeApi):
    """FakeKubeApi whose `_emit` finds the changed object by an index instead of a scan of every
    item (at 10,000 pods the scan made the fake send only about 100 pod events a second).
    Otherwise the same: a new resourceVersion, the list updated, the event to every open watch."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._index = {name: {_key(o): i for i, o in enumerate(r.items)} for name, r in self.resources.items()}

    def _emit(self, name: str, kind: str, obj: dict) -> dict:
        r, index = self.resources[name], self._index[name]
        self._rv += 1
        obj.setdefault("metadata", {})["resourceVersion"] = str(self._rv)
        obj["apiVersion"], obj["kind"] = r.api_version, r.kind
        key = _key(obj)
        i = index.get(key)
        old = r.items[i] if i is not None else None     # replaced below, never changed in place
        if kind == "DELETED":
            if i is not None:
                last = r.items.pop()
                del index[key]
                if i < len(r.items):
                    r.items[i] = last
                    index[_key(last)] = i
        elif i is not None:
            r.items[i] = copy.deepcopy(obj)
        else:
            index[key] = len(r.items)
            r.items.append(copy.deepcopy(obj))
        r.resource_version = str(self._rv)
        r.events.append((self._rv, kind, obj, old))
        for q in r.watchers:
            q.put_nowait((self._rv, kind, obj, old))
        return copy.deepcopy(obj)


class ApiSide:
    """In the API server's process: the objects, and the changes a cluster makes to them, sent
    through FakeKubeApi.emit (every change goes out on the open watches)."""

    def __init__(self, args, rng: random.Random):
        self.rng = rng
        self.maker = PodMaker(rng)
        nodes = make_nodes(args.nodes, rng)
        scaled_objects, deployments, self.workloads = make_workloads(args.scaled_objects, rng)
        self.by_key = {f"{w['namespace']}/{w['name']}": w for w in self.workloads}
        self.nodes = {n["metadata"]["name"]: n for n in nodes}
        self.node_names = sorted(self.nodes)
        untainted = [n["metadata"]["name"] for n in nodes if not n["spec"].get("taints")]
        pods: dict[tuple[str, str], dict] = {}
        for name in self.node_names:                       # two DaemonSet pods on every node
            for kind in (0, 1):
                p = self.maker.daemon_pod(kind, name)
                pods[(p["metadata"]["namespace"], p["metadata"]["name"])] = p
        for i, w in enumerate(self.workloads):             # a first guess of each workload's replicas
            for _ in range(1 + i % 5):
                p = self.maker.replica_pod(w, rng.choice(untainted))
                pods[(p["metadata"]["namespace"], p["metadata"]["name"])] = p
        while len(pods) < args.pods:                       # other tenants' pods on untainted nodes
            p = self.maker.tenant_pod(rng.choice(untainted))
            pods[(p["metadata"]["namespace"], p["metadata"]["name"])] = p
        self.untainted = untainted
        self.pods = pods
        self.pod_keys = list(pods)
        self.target_pods = args.pods
        lists = {"nodes": nodes, "pods": list(pods.values()), "scaledobjects": scaled_objects,
                 "deployments": deployments}
        self.api = IndexedFakeKubeApi(lists={
            **{k: {"metadata": {"resourceVersion": "1"}, "items": v} for k, v in lists.items()},
            "runtimeclasses": recorded_list("runtimeclasses"), "statefulsets": recorded_list("statefulsets")})
        self.clock_s = START_S
        self.keep_events = 4 * max(1000, args.pods // 10)

    # pods: kept in a dict and a list (random choice in O(1))
    def _add(self, pod: dict) -> None:
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        self.pods[key] = pod
        self.pod_keys.append(key)
        self.api.emit("pods", "ADDED", pod)

    def _delete(self, key, i: int | None = None) -> dict:
        pod = self.pods.pop(key)
        i = self.pod_keys.index(key) if i is None else i
        self.pod_keys[i] = self.pod_keys[-1]
        self.pod_keys.pop()
        self.api.emit("pods", "DELETED", pod)
        return pod

    def _stamp(self) -> str:
        self.clock_s += 0.5
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.clock_s))

    def modify_pod(self) -> int:
        """One status update: a WattWise replica turns not ready (10%) or ready again, another
        pod's container restarts. One MODIFIED event."""
        key = self.rng.choice(self.pod_keys)
        pod = self.pods[key]
        stamp = self._stamp()
        status = pod["status"]
        if MANAGED_LABEL in pod["metadata"]["labels"]:
            ready = next(c for c in status["conditions"] if c["type"] == "Ready")
            now = "True" if ready["status"] == "False" or self.rng.random() >= 0.1 else "False"
            for c in status["conditions"]:
                if c["type"] in ("Ready", "ContainersReady"):
                    c.update(status=now, lastTransitionTime=stamp)
            status["containerStatuses"][0]["ready"] = now == "True"
        else:
            cs = status["containerStatuses"][0]
            cs["restartCount"] = cs.get("restartCount", 0) + 1
            cs["lastState"] = {"terminated": {"exitCode": 137, "reason": "OOMKilled", "finishedAt": stamp}}
            cs["state"] = {"running": {"startedAt": stamp}}
        self.api.emit("pods", "MODIFIED", pod)
        return 1

    def replace_pod(self) -> int:
        """A pod deleted and its controller's new one bound to the same node (a rollout, an
        eviction): DELETED then ADDED. Two events."""
        i = self.rng.randrange(len(self.pod_keys))
        pod = self._delete(self.pod_keys[i], i)
        labels, node = pod["metadata"]["labels"], pod["spec"]["nodeName"]
        if MANAGED_LABEL in labels:
            new = self.maker.replica_pod(self.by_key[f"{pod['metadata']['namespace']}/{labels[MANAGED_LABEL]}"], node)
        elif pod["metadata"]["namespace"] == "monitoring":
            new = self.maker.daemon_pod(0, node)
        elif pod["metadata"]["namespace"] == "kube-system":
            new = self.maker.daemon_pod(1, node)
        else:
            new = self.maker.tenant_pod(node)
        self._add(new)
        return 2

    def heartbeat(self, name: str) -> int:
        """The kubelet's status update of one node: every condition's lastHeartbeatTime."""
        node = self.nodes[name]
        stamp = self._stamp()
        for c in node["status"].get("conditions") or ():
            c["lastHeartbeatTime"] = stamp
        self.api.emit("nodes", "MODIFIED", node)
        return 1

    def pod_events(self, n: int, replace_share: float) -> int:
        """About n pod events: status updates, and pods replaced (replace_share of the events)."""
        sent = 0
        while sent < n:
            sent += self.replace_pod() if self.rng.random() < replace_share / 2 else self.modify_pod()
        return sent

    def converge(self, desired: dict[str, dict[str, int]]) -> int:
        """Make each workload's replicas what the plan wants where it wants them, then top other
        tenants' pods up (or down) to the target total. Returns the pod events sent."""
        have: dict[str, dict[str, list]] = {}
        for key, pod in self.pods.items():
            w = pod["metadata"]["labels"].get(MANAGED_LABEL)
            if w:
                have.setdefault(f"{key[0]}/{w}", {}).setdefault(pod["spec"]["nodeName"], []).append(key)
        sent = 0
        for wkey, w in self.by_key.items():
            want, got = desired.get(wkey, {}), have.get(wkey, {})
            for node in set(want) | set(got):
                keys = got.get(node, [])
                for key in keys[want.get(node, 0):]:
                    self._delete(key)
                    sent += 1
                for _ in range(want.get(node, 0) - len(keys)):
                    self._add(self.maker.replica_pod(w, node))
                    sent += 1
        tenants = [k for k in self.pod_keys if k[0] in TENANTS]
        while len(self.pods) > self.target_pods and tenants:
            self._delete(tenants.pop())
            sent += 1
        while len(self.pods) < self.target_pods:
            self._add(self.maker.tenant_pod(self.rng.choice(self.untainted)))
            sent += 1
        return sent

    def trim(self) -> None:
        """Forget all but the last events (the fake keeps every event for watches that reopen):
        an older watch gets 410 Gone and lists again, as after etcd's compaction."""
        def run():
            for r in self.api.resources.values():
                if len(r.events) > self.keep_events:
                    del r.events[:-self.keep_events]
                    r.compacted = r.events[0][0] - 1
        self.api._call(run)

    def counts(self) -> dict:
        managed = sum(1 for p in self.pods.values() if MANAGED_LABEL in p["metadata"]["labels"])
        return {"nodes": len(self.nodes), "pods": len(self.pods), "managed_pods": managed,
                "scaledobjects": len(self.workloads), "namespaces": len({k[0] for k in self.pods})}


def api_main(conn, args) -> None:
    """The API server's process: serve, then do what the benchmark asks, one command at a time."""
    side = ApiSide(args, random.Random(args.seed))
    side.api.start()
    conn.send((side.api.url, side.counts()))
    node_cycle = 0
    while True:
        command, *rest = conn.recv()
        if command == "stop":
            side.api.stop()
            conn.send("stopped")
            return
        if command == "modify":                       # (n): n pod status updates
            conn.send({"pods": sum(side.modify_pod() for _ in range(rest[0])), "nodes": 0})
        elif command == "step":                       # (pod events, node heartbeats, replace share)
            pods = side.pod_events(rest[0], rest[2])
            nodes = 0
            for _ in range(rest[1]):
                nodes += side.heartbeat(side.node_names[node_cycle % len(side.node_names)])
                node_cycle += 1
            conn.send({"pods": pods, "nodes": nodes})
        elif command == "converge":                   # (desired replicas per workload and node)
            conn.send({"pods": side.converge(rest[0]), "nodes": 0, "counts": side.counts()})
        side.trim()


class ApiProcess:
    def __init__(self, args):
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=api_main, args=(child, args), name="fake-kube-api", daemon=True)
        self.proc.start()
        self.url, self.counts = self.conn.recv()

    def ask(self, *command) -> dict:
        self.conn.send(command)
        return self.conn.recv()

    def stop(self) -> None:
        if self.proc.is_alive():
            self.ask("stop")
            self.proc.join(10)


# -- the WattWise side, wired as `wattwise serve --scaler --kubeconfig ... --plan-inline` ------------

class SimClock:
    def __init__(self, start_s: float):
        self.now_s = start_s

    def __call__(self) -> float:
        return self.now_s


def wire(url: str, args, clock: SimClock):
    """KubeCluster (started), and the scaler as serve_cli._build wires it for a cluster."""
    from kubernetes import client

    from wattwise.kube.cluster import KubeCluster
    from wattwise.models.snapshot import Objective, PlannerSettings
    from wattwise.scaler.app import build_scaler
    from wattwise.scaler.carbon import carbon_source
    from wattwise.scaler.pod_counts import kube_pod_counts
    from wattwise.scaler.refresher import RefresherSettings
    from wattwise.scaler.server import ServerConfig
    from wattwise.serve_cli import DEFAULT_SCALER_SERVICE, _cluster_inputs, _demand_port

    cluster = KubeCluster(client.ApiClient(client.Configuration(host=url)), resync_s=args.resync_s).start()
    serve_args = argparse.Namespace(scaler_service=DEFAULT_SCALER_SERVICE, grid_zone_map=None, prometheus=None,
                                    refresh_s=args.refresh_s)
    inventory, registry, *_ = _cluster_inputs(serve_args, cluster, None)   # (inventory, registry, source)
    planner = TimedPlanner()
    scaler = build_scaler(inventory=inventory, carbon=carbon_source(None), catalogue_by_key=registry.bases,
                          settings=RefresherSettings(interval_s=args.refresh_s, objective=Objective("energy"),
                                                     planner=PlannerSettings()),
                          registry=registry, demand=_demand_port(serve_args),
                          config=ServerConfig(host="127.0.0.1", grpc_port=0, health_port=0),
                          planner=planner, pods=kube_pod_counts(cluster), clock=clock)
    return cluster, scaler, planner


class TimedPlanner(InlinePlanner):
    """InlinePlanner (serve --plan-inline), timing each run: the plan's share of a refresh."""
    last_s = 0.0

    def run(self, snapshots):
        t0 = time.perf_counter()
        try:
            return super().run(snapshots)
        finally:
            self.last_s = time.perf_counter() - t0


def wait_applied(cluster, before: tuple[int, int], sent: dict, timeout_s: float = 120.0) -> None:
    """Until the stores have taken in every event sent (each changes its store's version by one)."""
    want = (before[0] + sent["pods"], before[1] + sent["nodes"])
    deadline = time.monotonic() + timeout_s
    while cluster.pods.version < want[0] or cluster.nodes.version < want[1]:
        if time.monotonic() > deadline:
            raise SystemExit(f"the watches did not deliver the events within {timeout_s:.0f} s: "
                             f"pods store at {cluster.pods.version}/{want[0]}, nodes at {cluster.nodes.version}/"
                             f"{want[1]}\n{cluster.status()}")
        time.sleep(0.002)


def versions(cluster) -> tuple[int, int]:
    return cluster.pods.version, cluster.nodes.version


def rss_mib() -> tuple[float, float]:
    """(VmRSS, VmHWM) of this process in MiB, after a full collection (`sys.getallocatedblocks()`
    beside it tells live Python objects from memory the allocator keeps)."""
    gc.collect()
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def percentile(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def desired_replicas(state) -> dict[str, dict[str, int]]:
    plan = state.default_view.plan
    return {key: dict(wp.by_node) for key, wp in plan.workloads.items()}


# The parts of a refresh, by (file, function): found by name, so a moved line does not lose them.
PARTS = (("scaler/refresher.py", "_read_inventory", "node inventory (ClusterInventory)"),
         ("kube/inputs.py", "current", "  ClusterInventory.current"),
         ("models/cluster_nodes.py", "cluster_nodes", "    cluster_nodes (every node and pod)"),
         ("scaler/cluster_registry.py", "active", "workloads (ClusterRegistry.active)"),
         ("models/snapshot.py", "build_snapshot", "snapshots"),
         ("models/planner.py", "plan", "plan()"),
         ("models/planner.py", "planning_problem", "  grouping nodes, building the problem"),
         ("models/fallback.py", "solve_greedy", "  greedy"),
         ("models/milp.py", "solve_lp_rounding", "  LP rounding (HiGHS)"),
         ("models/planner.py", "_polish", "  local search (improve)"),
         ("models/planner.py", "_assemble", "  per-node placement, ranking, reasons"))


def _short(path: str) -> str:
    path = path.replace(str(REPO) + "/", "")
    return path.split("site-packages/", 1)[1] if "site-packages/" in path else path


def profile_report(profiler: cProfile.Profile, limit: int) -> str:
    stats = pstats.Stats(profiler, stream=io.StringIO()).stats
    rows = [(ct, tt, nc, _short(path), line, func) for (path, line, func), (_, nc, tt, ct, _) in stats.items()]
    total = max(r[0] for r in rows)
    lines = [f"  total {total:.3f} s; the parts (cumulative s, calls):"]
    for suffix, func, label in PARTS:
        found = [r for r in rows if r[3].endswith(suffix) and r[5] == func]
        if found:
            ct, _, nc, path, line, _ = max(found)
            lines.append(f"  {label:<40} {ct:7.3f} s {nc:>5}x  {path}:{line}")
    lines.append(f"  top {limit} by own time (cumulative s, own s, calls):")
    for ct, tt, nc, path, line, func in sorted(rows, key=lambda r: -r[1])[:limit]:
        lines.append(f"  {ct:7.3f} {tt:7.3f} {nc:>9}  {path}:{line}({func})")
    return "\n".join(lines)


class Loop:
    """The benchmark's hands: events through the fake API (waiting until the stores have them),
    refreshes on the simulated clock, and the cluster following each new plan."""

    def __init__(self, api: ApiProcess, cluster, scaler, planner: TimedPlanner, clock: SimClock, refresh_s: float):
        self.api, self.cluster, self.scaler, self.planner, self.clock = api, cluster, scaler, planner, clock
        self.refresh_s = refresh_s
        self.desired: dict | None = None
        self.follow_events = 0          # pod events of the cluster following the plan
        self.delivery_s = 0.0
        self.delivered = 0

    def events(self, *command) -> dict:
        before = versions(self.cluster)
        t = time.perf_counter()
        sent = self.api.ask(*command)
        wait_applied(self.cluster, before, sent)
        self.delivery_s += time.perf_counter() - t
        self.delivered += sent["pods"] + sent["nodes"]
        return sent

    def refresh(self, force: bool) -> tuple[float, float, tuple[bool, str]]:
        """(seconds, of which planning, the gate's decision); then the pods follow a changed plan."""
        refresher = self.scaler.refresher
        self.clock.now_s += self.refresh_s
        self.planner.last_s = 0.0
        t = time.perf_counter()
        refresher.refresh_once(force=force)
        took = time.perf_counter() - t
        decision = refresher.last_decision
        if decision[0]:
            self.follow()
        return took, self.planner.last_s, decision

    def follow(self) -> dict:
        """KEDA and the scheduler make the pods what the plan says: replicas where it put them."""
        desired = desired_replicas(self.scaler.refresher.state())
        if desired == self.desired:
            return {}
        self.desired = desired
        sent = self.events("converge", desired)
        self.follow_events += sent["pods"]
        return sent


def summary(times) -> str:
    return (f"median {statistics.median(times) * 1000:7.1f} ms  p95 {percentile(times, 0.95) * 1000:7.1f} ms  "
            f"max {max(times) * 1000:7.1f} ms")


def decisions_text(decisions: Counter) -> str:
    return ", ".join(f"{'re-plan' if go else 'keep'} ({why}) x{n}" for (go, why), n in decisions.most_common())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nodes", type=int, default=1000)
    p.add_argument("--scaled-objects", type=int, default=100)
    p.add_argument("--pods", type=int, default=10_000)
    p.add_argument("--events", type=int, default=10_000, help="pod events per simulated hour (default 10,000)")
    p.add_argument("--hours", type=float, default=1.0, help="simulated hours of watch events (default 1)")
    p.add_argument("--heartbeat-s", type=float, default=300.0,
                   help="every node's status is updated this often, simulated (default 300: kubelet's "
                        "nodeStatusReportFrequency)")
    p.add_argument("--refreshes", type=int, default=30, help="forced and gated refreshes measured (default 30 each)")
    p.add_argument("--pod-events-per-refresh", type=int, default=5,
                   help="pod MODIFIED events before each measured refresh (default 5)")
    p.add_argument("--refresh-s", type=float, default=15.0, help="the refresh interval, simulated (default 15)")
    p.add_argument("--replace-share", type=float, default=0.3,
                   help="share of the hour's pod events that are pods replaced (DELETED+ADDED; default 0.3)")
    p.add_argument("--resync-s", type=float, default=3600.0,
                   help="the KubeCluster's relist period (serve: --node-resync-s, default 300; here once a "
                        "wall-clock hour, so that no relist lands in a timed refresh)")
    p.add_argument("--profile-lines", type=int, default=10)
    p.add_argument("--seed", type=int, default=13)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("wattwise.kube.inputs").setLevel(logging.ERROR)   # the fleet's class split, once

    # imported before the clock starts (serve has them imported by the time it connects)
    import kubernetes.client  # noqa: F401

    from wattwise.scaler.app import build_scaler  # noqa: F401
    from wattwise.serve_cli import _cluster_inputs  # noqa: F401

    print("live loop benchmark: " + " ".join([".venv/bin/python benchmarks/live_loop_bench.py", *sys.argv[1:]]))
    t_setup = time.perf_counter()
    api = ApiProcess(args)
    c = api.counts
    print(f"fake API (own process, built in {time.perf_counter() - t_setup:.1f} s): {c['nodes']} nodes, "
          f"{c['scaledobjects']} ScaledObjects + Deployments, {c['pods']} pods in {c['namespaces']} namespaces "
          f"({c['managed_pods']} WattWise replicas)")
    clock = SimClock(START_S)
    try:
        # 1. start to first plan ---------------------------------------------------------------------
        t0, cpu0 = time.perf_counter(), time.process_time()
        cluster, scaler, planner = wire(api.url, args, clock)
        if not cluster.wait_synced(300.0):
            raise SystemExit(f"not synced after 300 s:\n{cluster.status()}")
        t_synced, cpu_synced = time.perf_counter() - t0, time.process_time() - cpu0
        state = scaler.refresher.refresh_once()
        t_first = time.perf_counter() - t0
        if state is None:
            raise SystemExit("no first plan")
        plan = state.default_view.plan
        print(f"\n1. first plan (in-process, InlinePlanner): {t_first:.2f} s from KubeCluster() to the plan = lists "
              f"synced {t_synced:.2f} s (this process's CPU {cpu_synced:.2f} s, the rest is the fake paging) + first refresh {t_first - t_synced:.2f} s (planning {planner.last_s:.2f} s); "
              f"{len(plan.workloads)} workloads, {sum(wp.replicas for wp in plan.workloads.values())} replicas on "
              f"{len(plan.active_nodes)} nodes, {sum(wp.unmet_fps > 0 for wp in plan.workloads.values())} short of "
              f"demand, solver {plan.solver}")
        loop = Loop(api, cluster, scaler, planner, clock, args.refresh_s)
        c = loop.follow()["counts"]
        print(f"   the cluster follows the plan: {loop.follow_events} pod events; now {c['pods']} pods, "
              f"{c['managed_pods']} of them WattWise replicas where the plan put them")
        rss_start, _ = rss_mib()

        # 2. refreshes -------------------------------------------------------------------------------
        runs = {True: ([], []), False: ([], [])}
        decisions: Counter = Counter()
        followed = loop.follow_events
        for _ in range(args.refreshes):
            for force in (True, False):
                loop.events("modify", args.pod_events_per_refresh)
                took, planning, decision = loop.refresh(force)
                runs[force][0].append(took)
                runs[force][1].append(planning)
                if not force:
                    decisions[decision] += 1
        print(f"\n2. one refresh (inputs + plan), {args.refreshes} forced and {args.refreshes} gated, interleaved; "
              f"{args.pod_events_per_refresh} pod MODIFIED events before each (and {loop.follow_events - followed} "
              f"in all as pods followed changed plans):")
        for force, label in ((True, "forced"), (False, "gated ")):
            times, planning = runs[force]
            inputs = [t - q for t, q in zip(times, planning)]
            print(f"   {label} {summary(times)}   planning median {statistics.median(planning) * 1000:6.1f} ms, "
                  f"inputs and the rest median {statistics.median(inputs) * 1000:6.1f} ms")
        print(f"   gated decisions: {decisions_text(decisions)}")
        forced_p95, gated_p95 = percentile(runs[True][0], 0.95), percentile(runs[False][0], 0.95)
        print(f"   target p95 <= 1 s: forced {'met' if forced_p95 <= 1.0 else 'NOT met'}, gated "
              f"{'met' if gated_p95 <= 1.0 else 'NOT met'}; forced/gated median ratio "
              f"{statistics.median(runs[True][0]) / statistics.median(runs[False][0]):.1f}")

        # 3. memory over simulated hours -------------------------------------------------------------
        steps = max(1, round(args.hours * 3600 / args.refresh_s))
        pod_total = round(args.events * args.hours)
        node_total = round(args.nodes * args.hours * 3600 / args.heartbeat_s)
        checkpoints = {round(steps * k / 4) for k in (1, 2, 3, 4)}
        print(f"\n3. memory over {args.hours:g} simulated hour(s): {pod_total} pod events ({args.replace_share:.0%} of "
              f"them pods replaced) + {node_total} node status updates, as fast as the fake sends them, and a gated "
              f"refresh every {args.refresh_s:g} s simulated ({steps} refreshes)")
        rss0, _ = rss_mib()
        print(f"   RSS before: {rss0:.1f} MiB, Python blocks {sys.getallocatedblocks() / 1e6:.2f} M (after the first plan and the cluster following it: {rss_start:.1f} MiB)")
        t_hour = time.perf_counter()
        loop.delivery_s = loop.delivered = 0
        followed = loop.follow_events
        sent_pods = sent_nodes = 0
        step_times, step_decisions = [], Counter()
        for step in range(1, steps + 1):
            sent = loop.events("step", round(pod_total * step / steps) - sent_pods,
                               round(node_total * step / steps) - sent_nodes, args.replace_share)
            sent_pods += sent["pods"]
            sent_nodes += sent["nodes"]
            took, _, decision = loop.refresh(False)
            step_times.append(took)
            step_decisions[decision] += 1
            if step in checkpoints:
                rss, hwm = rss_mib()
                print(f"   after {step * args.refresh_s / 3600:4.2f} h ({sent_pods:>6} pod, {sent_nodes:>6} node events): "
                      f"RSS {rss:6.1f} MiB ({rss - rss0:+5.1f}), peak {hwm:6.1f} MiB, Python blocks "
                      f"{sys.getallocatedblocks() / 1e6:.2f} M  [{time.perf_counter() - t_hour:.0f} s]")
        rss1, _ = rss_mib()
        print(f"   RSS after: {rss1:.1f} MiB: {rss1 - rss0:+.1f} MiB ({(rss1 - rss0) / rss0:+.1%}) over the hour")
        print(f"   the hour's gated refreshes: {summary(step_times)}; {decisions_text(step_decisions)}; "
              f"{loop.follow_events - followed} pod events as pods followed changed plans")
        print(f"   events delivered at {loop.delivered / max(loop.delivery_s, 1e-9):.0f}/s (the fake's pace); stores now "
              f"{len(cluster.nodes)} nodes, {len(cluster.pods)} pods; lists per resource: "
              + ", ".join(f"{name} {s.lists}" for name, s in cluster.stores.items()))

        # where a forced refresh's time goes -----------------------------------------------------------
        loop.events("modify", args.pod_events_per_refresh)
        clock.now_s += args.refresh_s
        gc.collect()
        profiler = cProfile.Profile()
        profiler.enable()
        scaler.refresher.refresh_once(force=True)
        profiler.disable()
        print(f"\ncProfile of one forced refresh (after {args.pod_events_per_refresh} pod events; profiling slows it):")
        print(profile_report(profiler, args.profile_lines))
        print(f"\ntotal {time.perf_counter() - t_setup:.0f} s")
        cluster.stop(2.0)
    finally:
        api.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
