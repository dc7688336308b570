"""The scaler's port for the pods of a workload: running and ready pods per node, and how many
wait unbound (the re-plan gate re-plans when pods wait for a node `pending_after_s`).

With them, where `models.rollout.surge_applies` (pod-deletion costs set, not a StatefulSet), the
answer is the core's `models.rollout.desired_replicas` (the plan's replicas plus a surge of
off-plan pods while planned ones are not ready: make before break); otherwise the plan's replicas. Live (when the Kubernetes API is configured): `kube_pod_counts(cluster)`, the
process's one view of WattWise's pods over its one pods store, shared with the extender
(`wattwise.kube.workload_pods.WorkloadPods`); tests and the demo: `StaticPodCounts`.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Mapping, Protocol, runtime_checkable

if TYPE_CHECKING:
    from wattwise.kube.cluster import KubeCluster

PerNode = Mapping[str, int]


@runtime_checkable
class PodCounts(Protocol):
    def running_and_ready(self, workload_key: str) -> tuple[PerNode, PerNode] | None:
        """(running pods per node, ready pods per node) of the workload, or None when unknown
        (not listed yet, or the source is failing). A known workload without pods is ({}, {})."""
        ...

    def unbound(self, workload_key: str) -> int | None:
        """Pods of the workload not bound to a node yet (kube-scheduler has not placed them), or
        None when unknown: the re-plan gate's pods waiting."""
        ...


class StaticPodCounts:
    """Counts a test or the demo sets: workload -> (running per node, ready per node), and
    unbound pods. `known=False` answers None for every workload, like a watch that has not
    listed yet."""

    def __init__(self, counts: Mapping[str, tuple[PerNode, PerNode]] | None = None, known: bool = True):
        self._lock = threading.Lock()
        self._counts = {k: (dict(r), dict(d)) for k, (r, d) in (counts or {}).items()}
        self._unbound: dict[str, int] = {}
        self.known = known

    def set(self, workload_key: str, running: PerNode, ready: PerNode, unbound: int = 0) -> None:
        with self._lock:
            self._counts[workload_key] = (dict(running), dict(ready))
            self._unbound[workload_key] = unbound

    def unbound(self, workload_key: str) -> int | None:
        if not self.known:
            return None
        with self._lock:
            return self._unbound.get(workload_key, 0)

    def running_and_ready(self, workload_key: str) -> tuple[PerNode, PerNode] | None:
        if not self.known:
            return None
        with self._lock:
            return self._counts.get(workload_key, ({}, {}))


def kube_pod_counts(cluster: "KubeCluster") -> PodCounts:
    """Running and ready pods per node from the cluster's pods store: pods labelled
    `wattwise.io/workload: <ScaledObject name>` in the ScaledObject's namespace, bound and unfinished;
    None while the pods are not listed yet or the watch is failing."""
    return cluster.workload_pods()
