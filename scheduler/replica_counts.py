"""Running WattWise replicas per workload and node: the one watch of WattWise's pods.

`KubeReplicaCounts` lists and watches pods carrying the `wattwise.io/workload` label (only those:
the label selector keeps the stream small) and counts the ones bound to a node and not finished,
and of those the ready ones. Three readers share it:
- the extender's "prefer the class the plan is short of" (`by_node`);
- the scaler's make-before-break surge (`running_and_ready`, the scaler's `PodCounts` port);
- the pod-deletion-cost reconciler (`pods()` and `add_listener`, scheduler/deletion_cost.py).
"""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Mapping, Protocol, runtime_checkable

from wattwise.models.labels import MANAGED_LABEL
from wattwise.models.rollout import DELETION_COST_ANNOTATION
from wattwise.scheduler.list_watch import ListWatch

log = logging.getLogger(__name__)


@runtime_checkable
class ReplicaCounts(Protocol):
    def by_node(self, workload_key: str) -> Mapping[str, int]: ...


class StaticReplicaCounts:
    def __init__(self, counts: Mapping[str, Mapping[str, int]]):
        self._counts = {k: dict(v) for k, v in counts.items()}

    def by_node(self, workload_key: str) -> Mapping[str, int]:
        return self._counts.get(workload_key, {})


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


def _is_ready(status: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or ())


def _record(pod: dict) -> PodRecord | None:
    """The record of a bound, unfinished WattWise pod, else None."""
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    value = (meta.get("labels") or {}).get(MANAGED_LABEL)
    node = spec.get("nodeName")
    if not value or not node or meta.get("deletionTimestamp") or status.get("phase") in ("Succeeded", "Failed"):
        return None
    namespace = meta.get("namespace") or "default"
    key = value if "/" in value else f"{namespace}/{value}"
    return PodRecord(namespace, meta.get("name") or "", key, node, _is_ready(status),
                     (meta.get("annotations") or {}).get(DELETION_COST_ANNOTATION),
                     str(meta.get("resourceVersion") or ""), str(status.get("phase") or "Pending"))


class KubeReplicaCounts:
    def __init__(self, api_client, resync_s: float = 300.0, retry_s: float = 2.0, max_retry_s: float = 30.0):
        from kubernetes import client

        self.api_client = api_client     # shared with the deletion-cost reconciler's PATCHes
        call = functools.partial(client.CoreV1Api(api_client).list_pod_for_all_namespaces,
                                 label_selector=MANAGED_LABEL)
        self._pods: dict[str, PodRecord] = {}    # namespace/name -> record
        # (running, ready) per workload and node, swapped together so readers see one pair
        self._tallies: tuple[Mapping[str, Mapping[str, int]], Mapping[str, Mapping[str, int]]] = (
            MappingProxyType({}), MappingProxyType({}))
        self._records: tuple[PodRecord, ...] = ()
        self._listeners: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self.watch = ListWatch("pod", call, self, resync_s, retry_s=retry_s, max_retry_s=max_retry_s)

    def by_node(self, workload_key: str) -> Mapping[str, int]:
        return self._tallies[0].get(workload_key, {})

    def ready_by_node(self, workload_key: str) -> Mapping[str, int]:
        return self._tallies[1].get(workload_key, {})

    @property
    def known(self) -> bool:
        """The counts are current: listed at least once, and the watch is not failing now."""
        return self.watch.synced and not self.watch.last_error

    def running_and_ready(self, workload_key: str) -> tuple[Mapping[str, int], Mapping[str, int]] | None:
        """The scaler's `PodCounts` port: (running, ready) pods per node, or None while unknown
        (not listed yet, or the API server is not answering: counts may be stale)."""
        if not self.known:
            return None
        counts, ready = self._tallies
        return counts.get(workload_key, {}), ready.get(workload_key, {})

    def pods(self) -> tuple[PodRecord, ...]:
        return self._records

    def add_listener(self, fn: Callable[[], None]) -> None:
        """Called (on the watch thread) after every change of the pods."""
        self._listeners.append(fn)

    def start(self) -> "KubeReplicaCounts":
        self.watch.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self.watch.stop(timeout_s)

    def replace_all(self, items: list[dict]) -> None:
        with self._lock:
            self._pods = {}
            for pod in items:
                self._set(pod)
            self._recount()
        self._notify()

    def apply(self, kind: str, obj: dict) -> None:
        with self._lock:
            if kind == "DELETED":
                self._pods.pop(self._id(obj), None)
            else:
                self._set(obj)
            self._recount()
        self._notify()

    def _notify(self) -> None:
        for fn in self._listeners:
            try:
                fn()
            except Exception:  # noqa: BLE001 - a reader's failure must not stop the watch
                log.exception("pod listener failed")

    @staticmethod
    def _id(pod: dict) -> str:
        meta = pod.get("metadata") or {}
        return f"{meta.get('namespace')}/{meta.get('name')}"

    def _set(self, pod: dict) -> None:
        record = _record(pod)
        if record is None:
            self._pods.pop(self._id(pod), None)
        else:
            self._pods[self._id(pod)] = record

    def _recount(self) -> None:
        counts: dict[str, dict[str, int]] = {}
        ready: dict[str, dict[str, int]] = {}
        for r in self._pods.values():
            per_node = counts.setdefault(r.workload, {})
            per_node[r.node] = per_node.get(r.node, 0) + 1
            if r.ready:
                per_node = ready.setdefault(r.workload, {})
                per_node[r.node] = per_node.get(r.node, 0) + 1
        self._tallies = (MappingProxyType(counts), MappingProxyType(ready))
        self._records = tuple(self._pods.values())
