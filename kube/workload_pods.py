"""WattWise's running replicas per workload and node: a view over the cluster's one pods store.

A pod belongs to a workload when it carries the label `wattwise.io/workload: <ScaledObject name>`:
the workload is that name in the pod's namespace (a value `namespace/name`, today's other form, is
still accepted). It counts while bound to a node and neither finished nor being deleted; it is
ready when its Ready condition is True. One not bound yet (kube-scheduler has not placed it) is
counted apart, as unbound. The store holds every tenant's pods; a pod of another
tenant costs one label lookup per event. Readers, all of the one view per process
(`KubeCluster.workload_pods()`):
- the scaler's `PodCounts` port (`running_and_ready`: the make-before-break surge and where
  replicas run; `unbound`: the re-plan gate's pods waiting);
- the extender's `ReplicaCounts` (`by_node`: prefer the classes the plan is short of);
- the pod-deletion-cost reconciler (`pods()`, `add_listener`).
"""

from __future__ import annotations

import logging
from datetime import datetime
from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Mapping

from wattwise.kube.store import Key, ObjectStore, StoreView, key_of
from wattwise.models.labels import MANAGED_LABEL
from wattwise.models.rollout import DELETION_COST_ANNOTATION

log = logging.getLogger(__name__)

PerNode = Mapping[str, int]


@dataclass(frozen=True)
class PodRecord:
    """What the readers need of one bound, unfinished WattWise pod."""

    namespace: str
    name: str
    workload: str                 # namespace/name of the workload
    node: str
    ready: bool                   # condition Ready is True
    deletion_cost: str | None     # the pod's controller.kubernetes.io/pod-deletion-cost, as set
    resource_version: str
    phase: str = "Running"        # status.phase: Pending, Running or Unknown
    ready_since_s: float | None = None   # when condition Ready last became what it is (None: not said)


def workload_key(pod: dict) -> str | None:
    """namespace/name of the workload a pod belongs to, from its label; None for other pods."""
    meta = pod.get("metadata") or {}
    value = (meta.get("labels") or {}).get(MANAGED_LABEL)
    if not value or not isinstance(value, str):
        return None
    return value if "/" in value else f"{meta.get('namespace') or 'default'}/{value}"


def _is_ready(status: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or ())


def _ready_since_s(status: dict) -> float | None:
    """The Ready condition's lastTransitionTime (RFC 3339, UTC) in epoch seconds; None if absent or unreadable."""
    for c in status.get("conditions") or ():
        if c.get("type") == "Ready" and isinstance(c.get("lastTransitionTime"), str):
            try:
                return datetime.fromisoformat(c["lastTransitionTime"].replace("Z", "+00:00")).timestamp()
            except ValueError:
                return None
    return None


def _unfinished(pod: dict) -> bool:
    """Neither finished nor being deleted."""
    return not (pod.get("metadata") or {}).get("deletionTimestamp") \
        and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def unbound_workload(pod: dict) -> str | None:
    """The workload of an unfinished WattWise pod not bound to a node yet, else None."""
    key = workload_key(pod)
    if key is None or (pod.get("spec") or {}).get("nodeName") or not _unfinished(pod):
        return None
    return key


def pod_record(pod: dict) -> PodRecord | None:
    """The record of a bound, unfinished WattWise pod, else None."""
    key = workload_key(pod)
    if key is None:
        return None
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    node = spec.get("nodeName")
    if not node or not _unfinished(pod):
        return None
    return PodRecord(meta.get("namespace") or "default", meta.get("name") or "", key, node, _is_ready(status),
                     (meta.get("annotations") or {}).get(DELETION_COST_ANNOTATION),
                     str(meta.get("resourceVersion") or ""), str(status.get("phase") or "Pending"),
                     _ready_since_s(status))


class WorkloadPods(StoreView):
    def __init__(self, pods: ObjectStore):
        self._records: dict[Key, PodRecord] = {}
        self._unbound: dict[Key, str] = {}   # pod -> its workload, while not bound to a node
        self._unbound_counts: Mapping[str, int] = MappingProxyType({})
        # (running, ready) per workload and node, swapped together so readers see one pair
        self._tallies: tuple[Mapping[str, PerNode], Mapping[str, PerNode]] = (MappingProxyType({}),
                                                                               MappingProxyType({}))
        self._published: tuple[PodRecord, ...] = ()
        self._listeners: list[Callable[[], None]] = []
        super().__init__(pods)

    # -- reading (any thread) ---------------------------------------------------------------------
    @property
    def known(self) -> bool:
        """The counts are current: listed at least once, and the watch is not failing now."""
        return self.store.synced and not self.store.last_error

    def by_node(self, workload_key: str) -> PerNode:
        """The extender's `ReplicaCounts` port: running pods per node (empty while unknown)."""
        return self._tallies[0].get(workload_key, {})

    def ready_by_node(self, workload_key: str) -> PerNode:
        return self._tallies[1].get(workload_key, {})

    def running_and_ready(self, workload_key: str) -> tuple[PerNode, PerNode] | None:
        """The scaler's `PodCounts` port: (running, ready) pods per node, or None while unknown
        (not listed yet, or the API server is not answering: counts may be stale)."""
        if not self.known:
            return None
        running, ready = self._tallies
        return running.get(workload_key, {}), ready.get(workload_key, {})

    def unbound(self, workload_key: str) -> int | None:
        """The scaler's `PodCounts` port: pods of the workload not bound to a node yet, or None
        while unknown."""
        if not self.known:
            return None
        return self._unbound_counts.get(workload_key, 0)

    def pods(self) -> tuple[PodRecord, ...]:
        return self._published

    def add_listener(self, fn: Callable[[], None]) -> None:
        """Called (on the watch thread) after every change of WattWise's bound pods (a change of
        the unbound count alone calls nobody: its one reader, the refresher, polls it)."""
        self._listeners.append(fn)

    # -- following the store (the watch thread) -----------------------------------------------------
    def _rebuild(self, items: tuple[dict, ...]) -> bool:
        records, unbound = {}, {}
        for pod in items:
            record = pod_record(pod)
            if record is not None:
                records[key_of(pod)] = record
            waiting = unbound_workload(pod)
            if waiting is not None:
                unbound[key_of(pod)] = waiting
        if unbound != self._unbound:
            self._unbound = unbound
            self._count_unbound()
        if records == self._records:
            return False
        self._records = records
        self._recount()
        return True

    def _apply(self, kind: str, obj: dict) -> bool:
        key = key_of(obj)
        waiting = None if kind == "DELETED" else unbound_workload(obj)
        if waiting != self._unbound.get(key):
            if waiting is None:
                del self._unbound[key]
            else:
                self._unbound[key] = waiting
            self._count_unbound()
        record = None if kind == "DELETED" else pod_record(obj)
        if record == self._records.get(key):
            return False    # another tenant's pod, or nothing the readers of records see changed
        if record is None:
            del self._records[key]
        else:
            self._records[key] = record
        self._recount()
        return True

    def _count_unbound(self) -> None:
        counts: dict[str, int] = {}
        for workload in self._unbound.values():
            counts[workload] = counts.get(workload, 0) + 1
        self._unbound_counts = MappingProxyType(counts)

    def _recount(self) -> None:
        running: dict[str, dict[str, int]] = {}
        ready: dict[str, dict[str, int]] = {}
        for r in self._records.values():
            per_node = running.setdefault(r.workload, {})
            per_node[r.node] = per_node.get(r.node, 0) + 1
            if r.ready:
                per_node = ready.setdefault(r.workload, {})
                per_node[r.node] = per_node.get(r.node, 0) + 1
        self._tallies = (MappingProxyType(running), MappingProxyType(ready))
        self._published = tuple(self._records.values())

    def _after_change(self) -> None:
        for fn in tuple(self._listeners):
            try:
                fn()
            except Exception:  # noqa: BLE001 - a reader's failure must not stop the watch
                log.exception("a listener of WattWise's pods failed")
