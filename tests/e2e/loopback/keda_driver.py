"""A KEDA-like driver: KEDA's external-scaler calls over a real gRPC channel, HPA replica math,
and the workload controllers' pod bookkeeping, all against the fake Kubernetes API.

Every `interval_s` (KEDA's pollingInterval on the test's clock), for each ScaledObject the API
holds: `GetMetricSpec(ScaledObjectRef)`, then `GetMetrics` with the metric name it returned (the
trigger's whole metadata as `scalerMetadata`). The HPA (AverageValue, as KEDA sets it up):
desired = ceil(value / target), unchanged while value / (target * current) is within the 10%
tolerance, clamped to [minReplicaCount, maxReplicaCount]; scale-up at most max(2x, +4) per step;
scale-down to the highest recommendation of the stabilisation window. An error keeps the count.

The new count is written to the Deployment's or StatefulSet's `spec.replicas`; pods are then
created (Pending, unbound: the scheduler driver binds them) or deleted, as the controllers do:
a StatefulSet removes its highest ordinal first; a ReplicaSet unbound and not-running pods
first, then lower `controller.kubernetes.io/pod-deletion-cost`, then pods of nodes holding more
of the set, then the newest.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import grpc

from tests.kube_fake import FakeKubeApi
from wattwise.scaler.proto import externalscaler_pb2 as pb
from wattwise.scaler.proto import externalscaler_pb2_grpc as pb_grpc

TOLERANCE = 0.1
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"


@dataclass
class Hpa:
    """One ScaledObject's HPA state (times on the driver's clock, seconds)."""

    min_replicas: int
    max_replicas: int
    stabilisation_s: float
    recommendations: list[tuple[float, int]] = field(default_factory=list)

    def desired(self, now_s: float, current: int, value: float, target: float) -> int:
        ratio = value / (target * max(current, 1))
        if current > 0 and abs(ratio - 1.0) <= TOLERANCE:
            rec = current
        else:
            rec = math.ceil(round(value / target, 6))
        rec = min(max(rec, self.min_replicas, 1), self.max_replicas)
        self.recommendations = [(t, r) for t, r in self.recommendations if t > now_s - self.stabilisation_s]
        self.recommendations.append((now_s, rec))
        if rec > current:
            return min(rec, max(2 * current, current + 4))
        return min(current, max(r for _, r in self.recommendations))


@dataclass
class Scaling:
    at_s: float
    scaled_object: str
    value: float
    current: int
    desired: int


class KedaDriver:
    """Polls the scaler at `address` for every ScaledObject in `api` every `interval_s`.

    `create_pod(owner, kind, ordinal)` returns a new Pending pod's JSON (the test's pod template;
    `ordinal` for a StatefulSet's pod, None for a ReplicaSet's, which names it);
    `delete_pod(namespace, name)` removes a pod from wherever it runs."""

    def __init__(self, api: FakeKubeApi, address: str, *, interval_s: float, stabilisation_s: float,
                 create_pod: Callable[[dict, str, int | None], dict], delete_pod: Callable[[str, str], None],
                 clock: Callable[[], float] = time.time):
        self.api = api
        self.interval_s = interval_s
        self.stabilisation_s = stabilisation_s
        self.create_pod = create_pod
        self.delete_pod = delete_pod
        self.clock = clock
        self.channel = grpc.insecure_channel(address)
        self.stub = pb_grpc.ExternalScalerStub(self.channel)
        self.hpas: dict[str, Hpa] = {}
        self.history: list[Scaling] = []
        self.errors: list[str] = []
        self.timed_errors: list[tuple[float, str]] = []
        self.answers = 0                  # GetMetrics answered
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="keda-driver")

    def start(self) -> KedaDriver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.channel.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = self.clock()
            for so in copy.deepcopy(self.api.resources["scaledobjects"].items):
                if self._stop.is_set():
                    break
                self.poll(so)
            self._stop.wait(max(0.0, self.interval_s - (self.clock() - started)))

    # -- one ScaledObject ---------------------------------------------------------------------------

    def read(self, so: dict) -> tuple[float, float]:
        """(metric value, target) as KEDA reads them: the float when > 0, else the int."""
        meta, spec = so["metadata"], so["spec"]
        trigger = spec["triggers"][0]
        ref = pb.ScaledObjectRef(name=meta["name"], namespace=meta["namespace"],
                                 scalerMetadata=dict(trigger.get("metadata") or {}))
        metric = self.stub.GetMetricSpec(ref, timeout=10).metricSpecs[0]
        got = self.stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ref, metricName=metric.metricName),
                                   timeout=10).metricValues[0]
        self.answers += 1
        target = metric.targetSizeFloat if metric.targetSizeFloat > 0 else float(metric.targetSize)
        value = got.metricValueFloat if got.metricValueFloat > 0 else float(got.metricValue)
        return value, target

    def poll(self, so: dict) -> None:
        """One ScaledObject: read the scaler, scale the target (an error keeps its count: KEDA
        reports it and the HPA holds), then let the target's controller reconcile its pods."""
        meta, spec = so["metadata"], so["spec"]
        ref = spec["scaleTargetRef"]
        kind = ref.get("kind", "Deployment")
        resource = "statefulsets" if kind == "StatefulSet" else "deployments"
        owner = self._object(resource, meta["namespace"], ref["name"])
        try:
            value, target = self.read(so)
        except grpc.RpcError as e:
            self.errors.append(f"{meta['name']}: {e.code().name}: {e.details()}")
            self.timed_errors.append((self.clock(), self.errors[-1]))
        else:
            hpa = self.hpas.setdefault(meta["name"], Hpa(int(spec.get("minReplicaCount", 0)),
                                                          int(spec.get("maxReplicaCount", 100)), self.stabilisation_s))
            current = int(owner["spec"].get("replicas", 1))
            want = hpa.desired(self.clock(), current, value, target)
            if want != current:
                self.history.append(Scaling(self.clock(), meta["name"], value, current, want))
                owner["spec"]["replicas"] = want
                owner = self.api.emit(resource, "MODIFIED", owner)
        self.reconcile(kind, owner)

    def _object(self, resource: str, namespace: str, name: str) -> dict:
        return copy.deepcopy(next(o for o in self.api.resources[resource].items
                                  if (o["metadata"]["namespace"], o["metadata"]["name"]) == (namespace, name)))

    def pods_of(self, owner: dict) -> list[dict]:
        app = owner["spec"]["selector"]["matchLabels"]["app"]
        ns = owner["metadata"]["namespace"]
        return [p for p in self.api.resources["pods"].items
                if p["metadata"]["namespace"] == ns and (p["metadata"].get("labels") or {}).get("app") == app
                and (p.get("status") or {}).get("phase") in ("Pending", "Running")]

    def reconcile(self, kind: str, owner: dict) -> None:
        """Create or delete pods until the set has `spec.replicas` of them."""
        pods = copy.deepcopy(self.pods_of(owner))
        want = int(owner["spec"]["replicas"])
        name = owner["metadata"]["name"]
        if len(pods) < want:
            taken = {p["metadata"]["name"] for p in pods}
            ordinals = [i for i in range(want + len(pods)) if f"{name}-{i}" not in taken][:want - len(pods)]
            for ordinal in ordinals:
                self.api.emit("pods", "ADDED", self.create_pod(owner, kind, ordinal if kind == "StatefulSet" else None))
        elif len(pods) > want:
            order = statefulset_order(pods) if kind == "StatefulSet" else replicaset_order(pods)
            for p in order[:len(pods) - want]:
                self.delete_pod(p["metadata"]["namespace"], p["metadata"]["name"])


def created_s(pod: dict) -> float:
    stamp = pod["metadata"].get("creationTimestamp") or "1970-01-01T00:00:00Z"
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def statefulset_order(pods: list[dict]) -> list[dict]:
    """The highest ordinal first."""
    return sorted(pods, key=lambda p: -int(p["metadata"]["name"].rsplit("-", 1)[1]))


def replicaset_order(pods: list[dict]) -> list[dict]:
    """The ReplicaSet controller's order: unbound, then not running, then lower deletion cost,
    then more pods of the set on the same node, then the newest (highest creation counter)."""
    per_node: dict[str, int] = {}
    for p in pods:
        node = (p.get("spec") or {}).get("nodeName") or ""
        per_node[node] = per_node.get(node, 0) + 1

    def key(p: dict):
        node = (p.get("spec") or {}).get("nodeName") or ""
        annotations = p["metadata"].get("annotations") or {}
        return (bool(node), (p.get("status") or {}).get("phase") == "Running",
                int(annotations.get(DELETION_COST, "0")), -per_node.get(node, 0),
                -created_s(p))
    return sorted(pods, key=key)
