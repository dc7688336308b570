"""The live `ReplicaFpsSource`: each WattWise replica's delivered and dropped FPS from Prometheus.

Two instant queries at the plan time, one per gauge of the reference pipeline (`infer_fps`,
`drop_fps`, frames/s over its own 60 s window), each averaged over `window_s` so a series that
stopped reporting does not look alive for Prometheus's 5-minute lookback, and summed per pod by
the target labels (`namespace`, `pod` as the Prometheus Operator sets them; both settings):

    max by (namespace, pod) (sum by (namespace, pod, instance) (avg_over_time(infer_fps[60s])))
    max by (namespace, pod) (sum by (namespace, pod, instance) (avg_over_time(drop_fps[60s])))

(per target summed, the largest target of a pod taken: `promql.pod_fps`)

(`requested_metric`, when the pipeline exports what each replica is asked for, is a third.) A
replica that dropped frames reports as delivered what it delivered at the times it dropped (a third
query, `promql.pod_fps_while_dropping`: a subquery over the same window), not the window's average:
a replica saturated for ten seconds of the sixty, by a burst of frames, delivered its capacity then
and less before, and the average would read as a capacity it does not have. Its dropped FPS stay
the window's average, so a brief burst weighs as little as it lasted. Each
pod is joined to its workload and node through the pod watch (`pods`: WattWise's bound pods, as
`kube.workload_pods.WorkloadPods` serves them); only pods ready for at least the window count
(their Ready condition's lastTransitionTime), as a starting replica's rate, frames dropped while
its model loaded included, says nothing about capacity. Series of other pods are ignored.

Never lowers anything by itself: a failure (Prometheus down, a bad query), pods not known yet, or
ready WattWise pods of which none has the series, raise a `TelemetryError` saying which; the
refresher reports it and corrects nothing that refresh. A pod with one series but not the other
(just started, or its exporter is broken) is left out.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Iterable, Protocol

from wattwise.models.ports import ReplicaSample
from wattwise.telemetry.prometheus import promql
from wattwise.telemetry.prometheus.client import PrometheusClient, Series
from wattwise.telemetry.prometheus.connection import NO_AUTH, PrometheusAuth
from wattwise.telemetry.prometheus.errors import NoFpsData, TelemetryError

log = logging.getLogger(__name__)


class PodPlacement(Protocol):
    """What is needed of one WattWise pod (`kube.workload_pods.PodRecord` has it)."""

    namespace: str
    name: str
    workload: str
    node: str
    ready: bool


class PodPlacements(Protocol):
    """WattWise's bound pods (`kube.workload_pods.WorkloadPods` is one)."""

    @property
    def known(self) -> bool: ...

    def pods(self) -> Iterable[PodPlacement]: ...


@dataclass(frozen=True)
class ReplicaFpsSettings:
    fps_metric: str = "infer_fps"
    drop_metric: str = "drop_fps"
    requested_metric: str | None = None     # per-pod FPS asked of the replica, when exported
    counter: bool = False                   # the metrics count frames (rated) instead of gauges
    namespace_label: str = "namespace"
    pod_label: str = "pod"
    window_s: float = 60.0
    dropping_fraction: float = 0.05         # a step counts as dropping when drop_fps is above this share of infer_fps
    scrape_interval_s: float = 15.0         # Prometheus's for these metrics: counters need two scrapes to rate


class PrometheusReplicaFps:
    def __init__(self, client: PrometheusClient | str, pods: PodPlacements,
                 settings: ReplicaFpsSettings = ReplicaFpsSettings(), timeout_s: float = 5.0,
                 auth: PrometheusAuth = NO_AUTH):
        self._client = client if isinstance(client, PrometheusClient) else PrometheusClient(
            client, timeout_s=timeout_s, retries=1, backoff_s=0.1, auth=auth)
        self._pods = pods
        self.settings = settings

    def describe(self) -> str:
        s = self.settings
        return f"{s.fps_metric} and {s.drop_metric} by ({s.namespace_label}, {s.pod_label}) from {self._client.url}"

    def query(self, metric: str) -> str:
        s = self.settings
        return promql.pod_fps(metric, s.window_s, s.counter, s.namespace_label, s.pod_label)

    def while_dropping_query(self) -> str:
        s = self.settings
        return promql.pod_fps_while_dropping(s.fps_metric, s.drop_metric, s.window_s, s.dropping_fraction, s.counter,
                                             s.namespace_label, s.pod_label, s.scrape_interval_s)

    def read(self, at_s: float) -> list[ReplicaSample]:
        s = self.settings
        if not self._pods.known:
            raise TelemetryError("WattWise's pods are not known (not listed yet, or the pod watch is failing)",
                                 retryable=True)
        # a pod ready for less than the window: its gauges still average in its start-up (frames
        # dropped while its model loaded), which would read as a capacity far below the pair's
        pods = {(p.namespace, p.name): p for p in self._pods.pods()
                if p.ready and _ready_for(p, at_s, s.window_s)}
        if not pods:
            return []
        delivered = self._by_pod(s.fps_metric, at_s)
        dropped = self._by_pod(s.drop_metric, at_s)
        requested = self._by_pod(s.requested_metric, at_s) if s.requested_metric else {}
        saturated = self._by_query(self.while_dropping_query(), at_s)
        for metric, values in ((s.fps_metric, delivered), (s.drop_metric, dropped)):
            if not pods.keys() & values.keys():
                raise NoFpsData(f"no {metric!r} series with labels {s.namespace_label!r} and {s.pod_label!r} for "
                                f"any of {len(pods)} ready WattWise pod(s) at {at_s:.0f} (within {s.window_s:g} s); "
                                "do the inference pods export it, and does Prometheus scrape them?")
        out = []
        for key, p in sorted(pods.items()):
            fps, drop = delivered.get(key), dropped.get(key)
            if fps is None or drop is None:
                log.debug("pod %s/%s: no %s, left out", *key, s.fps_metric if fps is None else s.drop_metric)
                continue
            out.append(ReplicaSample(p.workload, p.node, saturated.get(key, fps), drop, requested.get(key),
                                     pod=f"{key[0]}/{key[1]}"))
        return out

    def _by_pod(self, metric: str, at_s: float) -> dict[tuple[str, str], float]:
        return self._by_query(self.query(metric), at_s)

    def _by_query(self, query: str, at_s: float) -> dict[tuple[str, str], float]:
        s = self.settings
        series: list[Series] = self._client.instant(query, at_s=at_s)
        out = {}
        for x in series:
            ns, pod, v = x.labels.get(s.namespace_label), x.labels.get(s.pod_label), float(x.values[-1])
            if ns and pod and math.isfinite(v) and v >= 0:
                out[(ns, pod)] = v
        return out

    def close(self) -> None:
        self._client.close()


def _ready_for(pod, at_s: float, window_s: float) -> bool:
    """Ready at least `window_s` before `at_s`; a pod whose ready time is not known counts."""
    return pod.ready_since_s is None or at_s - pod.ready_since_s >= window_s
