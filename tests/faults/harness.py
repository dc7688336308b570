"""The rig every fault test runs: `wattwise serve --scaler --extender` as a process against the fake
Kubernetes API (`tests/kube_fake.py`, the recorded cluster), its metrics port on, and a `Probe`
that keeps asking it what KEDA and kube-scheduler ask while a fault is on.

The probe (its own thread, every `every_s`) records for each tick: the KEDA answer (GetMetricSpec
once, then GetMetrics over one long-lived channel, as KEDA polls), `/filter` for a confidential
(kata-qemu-tdx) pod of checkout-cams over every node the API server holds, and `GET /plan`. A
node `/filter` lets the pod onto without a ready TDX (the NFD rule label `intel.feature.node.
kubernetes.io/tdx`) before and after the call is a TEE violation; a call that fails (connection
refused, 5xx, gRPC error) is an error. Tests then assert over the ticks of a time span.
"""

from __future__ import annotations

import copy
import math
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from prometheus_client.parser import text_string_to_metric_families

from tests.kube_fake import FakeKubeApi, recorded_list, wait_until
from tests.live.serve_proc import Served, serve, write_kubeconfig
from tests.prometheus_fixture import free_port
from wattwise.scaler.proto import externalscaler_pb2 as pb
from wattwise.scaler.proto import externalscaler_pb2_grpc as pb_grpc

KEY = "retail/checkout-cams"
TDX_READY = "intel.feature.node.kubernetes.io/tdx"
SERVE = ["serve", "--scaler", "--extender", "--host", "127.0.0.1", "--grpc-port", "0", "--health-port", "0",
         "--http-port", "0", "--plan-inline", "--refresh-s", "1", "--grace-s", "2", "--fps-metric", ""]
DEADLINE_S = 30.0    # for anything asynchronous: a few 1 s refreshes, with room for a loaded two-core machine

CONFIDENTIAL_POD = {
    "metadata": {"name": "checkout-cams-7c9d8f6b4-probe", "namespace": "retail",
                 "labels": {"wattwise.io/workload": "checkout-cams"}},
    "spec": {"runtimeClassName": "kata-qemu-tdx", "schedulerName": "wattwise-scheduler",
             "containers": [{"name": "inference", "resources": {"requests": {"cpu": "4", "memory": "8Gi"}}}]}}


def checkout_trigger(lists: dict) -> dict:
    """The recorded checkout-cams ScaledObject's trigger metadata (mutable, in `lists`)."""
    so = next(o for o in lists["scaledobjects"]["items"] if o["metadata"]["name"] == "checkout-cams")
    return so["spec"]["triggers"][0]["metadata"]


def recorded_lists(**trigger_metadata: str | None) -> dict:
    """Every resource's recorded list, checkout-cams' trigger metadata updated (None removes a key)."""
    from tests.kube_fake import RESOURCES

    lists = {name: copy.deepcopy(recorded_list(name)) for name, *_ in RESOURCES}
    md = checkout_trigger(lists)
    for k, v in trigger_metadata.items():
        if v is None:
            md.pop(k, None)
        else:
            md[k] = v
    return lists


def has_tdx(node: dict) -> bool:
    return ((node.get("metadata") or {}).get("labels") or {}).get(TDX_READY) == "true"


def summary(doc: dict) -> dict:
    """What a failure message needs of a plan: checkout-cams' placements, waiting replicas and models."""
    w = next(w for w in doc["workloads"] if w["key"] == KEY)
    models = [(m["node_class"], m["kind"], m["capacity_fps"], m.get("corrected_from_fps"))
              for m in doc["inputs"]["models"] if m["workload"] == KEY]
    return {"at": doc.get("generated_at"), "placements": [(p["node"], p["node_class"], p["replicas"])
                                                         for p in w["placements"]],
            "unplaced": w.get("unplaced_replicas"), "asked": w.get("asked_replicas"),
            "demand_fps": w["demand_fps"], "models": models}


@dataclass
class Rig:
    api: FakeKubeApi
    served: Served
    metrics_port: int
    workdir: Path
    metadata: dict[str, str]       # checkout-cams' trigger metadata, as KEDA sends it

    def plan(self) -> dict:
        return self.served.get("/plan")

    def workload(self, doc: dict | None = None) -> dict:
        doc = self.plan() if doc is None else doc
        return next(w for w in doc["workloads"] if w["key"] == KEY)

    def metrics(self) -> dict[tuple[str, tuple], float]:
        """The scaler's /metrics as {(name, sorted labels): value}."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as r:
            text = r.read().decode()
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}

    def metric(self, name: str, **labels: str) -> float | None:
        return self.metrics().get((name, tuple(sorted(labels.items()))))

    def node_names(self) -> list[str]:
        return sorted(n["metadata"]["name"] for n in self.api.resources["nodes"].items)

    def tdx_nodes(self) -> set[str]:
        return {n["metadata"]["name"] for n in self.api.resources["nodes"].items if has_tdx(n)}

    def filter(self, names: list[str] | None = None) -> dict:
        return self.served.post("/filter", {"Pod": CONFIDENTIAL_POD, "NodeNames": self.node_names()
                                            if names is None else names})

    def prioritize(self, names: list[str]) -> list[dict]:
        return self.served.post("/prioritize", {"Pod": CONFIDENTIAL_POD, "NodeNames": names})

    def keda(self) -> float:
        return self.served.metrics("checkout-cams", "retail", self.metadata)

    def needed(self) -> int:
        """The replicas the current plan asks for checkout-cams (placed, and any waiting for room):
        the floor of every KEDA answer while a fault is on (KEDA is told these plus any
        make-before-break surge)."""
        replicas = self.workload()["asked_replicas"]
        assert 0 < replicas <= self.keda()
        return replicas

    def degraded(self, *words: str) -> bool:
        """`GET /plan` says degraded, with a reason naming each of `words`."""
        doc = self.plan()
        text = " ".join(doc["degraded_reasons"]).lower()
        return doc["degraded"] and all(w.lower() in text for w in words)

    def recovered(self) -> bool:
        return not self.plan()["degraded"] and self.metric("wattwise_degraded") == 0

    def alive(self) -> bool:
        return self.served.proc.poll() is None

    def log(self) -> str:
        return self.served.log()[-6000:]


def start_rig(tmp_path: Path, lists: dict | None = None, args: list[str] = (), api: FakeKubeApi | None = None,
              api_url: str | None = None) -> Rig:
    """The fake API (from `lists`, default the recorded ones; or `api`, already started) and
    `wattwise serve` against it (`api_url`: reach the API there instead, e.g. through a proxy),
    waited for until its first plan holds checkout-cams."""
    lists = lists or recorded_lists()
    api = api or FakeKubeApi(lists=lists).start()
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", api_url or api.url)
    metrics_port = free_port()
    served = serve(tmp_path, [*SERVE, "--kubeconfig", str(kubeconfig), "--metrics-port", str(metrics_port), *args])
    rig = Rig(api, served, metrics_port, tmp_path, dict(checkout_trigger(lists)))
    assert wait_until(lambda: _has_workload(rig), DEADLINE_S), rig.log()
    return rig


def _has_workload(rig: Rig) -> bool:
    try:
        return any(w["key"] == KEY for w in rig.plan()["workloads"])
    except OSError:
        return False


def stop_rig(rig: Rig) -> int:
    code = rig.served.stop()
    rig.api.stop()
    return code


# -- the probe --------------------------------------------------------------------------------------

@dataclass
class Tick:
    t: float
    keda: float | None = None
    keda_s: float = 0.0                 # how long GetMetrics took
    passed: tuple[str, ...] = ()
    tee_violations: tuple[str, ...] = ()
    plan: dict | None = None
    errors: tuple[str, ...] = ()
    done: float = 0.0                   # when the tick's last answer came


@dataclass
class Probe:
    rig: Rig
    every_s: float = 0.25
    filter_names: list[str] | None = None     # None: every node the API holds
    ticks: list[Tick] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Probe:
        self._thread = threading.Thread(target=self._run, daemon=True, name="fault-probe")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def _run(self) -> None:
        rig = self.rig
        so = pb.ScaledObjectRef(name="checkout-cams", namespace="retail", scalerMetadata=rig.metadata)
        channel = grpc.insecure_channel(f"127.0.0.1:{rig.served.grpc_port}")
        stub = pb_grpc.ExternalScalerStub(channel)
        metric_name = None
        try:
            while not self._stop.is_set():
                tick, errors = Tick(time.time()), []
                try:
                    if metric_name is None:
                        metric_name = stub.GetMetricSpec(so, timeout=10).metricSpecs[0].metricName
                    asked = time.perf_counter()
                    got = stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=so, metricName=metric_name),
                                          timeout=10)
                    tick.keda_s = time.perf_counter() - asked
                    tick.keda = got.metricValues[0].metricValueFloat
                except grpc.RpcError as e:
                    errors.append(f"GetMetrics: {e.code()}: {e.details()}")
                except Exception as e:  # noqa: BLE001 - recorded, the test fails on it
                    errors.append(f"GetMetrics: {type(e).__name__}: {e}")
                try:
                    before = rig.tdx_nodes()
                    names = rig.node_names() if self.filter_names is None else self.filter_names
                    verdict = rig.filter(names)
                    tick.passed = tuple(verdict.get("NodeNames") or ())
                    after = rig.tdx_nodes()
                    tick.tee_violations = tuple(n for n in tick.passed if n not in before and n not in after)
                except Exception as e:  # noqa: BLE001 - recorded, the test fails on it
                    errors.append(f"/filter: {type(e).__name__}: {e}")
                try:
                    tick.plan = rig.plan()
                except Exception as e:  # noqa: BLE001 - recorded, the test fails on it
                    errors.append(f"/plan: {type(e).__name__}: {e}")
                tick.errors = tuple(errors)
                tick.done = time.time()
                self.ticks.append(tick)
                self._stop.wait(self.every_s)
        finally:
            channel.close()

    # -- reading ----------------------------------------------------------------------------------

    def between(self, start: float, end: float = math.inf) -> list[Tick]:
        return [t for t in self.ticks if start <= t.t <= end]

    def wait_ticks(self, after: float, n: int = 2) -> bool:
        """Until `n` ticks have started after `after` (so what they saw is later than that)."""
        return wait_until(lambda: len(self.between(after)) >= n, DEADLINE_S)

    def check(self, start: float, end: float = math.inf, floor: float | None = None) -> list[Tick]:
        """Over the ticks in [start, end]: no errors, no TEE violation, and every KEDA answer at
        least `floor`. Returns those ticks (at least one)."""
        ticks = self.between(start, end)
        assert ticks, f"no probe ticks between {start} and {end}: {[round(t.t - start, 2) for t in self.ticks][-20:]}"
        errors = [(round(t.t - start, 2), e) for t in ticks for e in t.errors]
        assert not errors, errors[:10]
        violations = [(round(t.t - start, 2), t.tee_violations) for t in ticks if t.tee_violations]
        assert not violations, f"confidential pod let onto nodes without TDX: {violations[:10]}"
        assert all(t.keda is not None for t in ticks)
        if floor is not None:
            low = [(round(t.t - start, 2), t.keda) for t in ticks if t.keda < floor]
            first = next((t for t in ticks if t.keda < floor), None)
            assert not low, (f"KEDA was told fewer than {floor} replicas: {low[:10]}; the plan then: "
                             f"{summary(first.plan) if first and first.plan else None}")
        return ticks

