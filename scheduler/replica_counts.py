"""Running WattWise replicas per workload and node, for "prefer the class the plan is short of".

`KubeReplicaCounts` lists and watches pods carrying the `wattwise.io/workload` label (only those:
the label selector keeps the stream small) and counts the ones bound to a node and not finished.
"""

from __future__ import annotations

import functools
import logging
import threading
from types import MappingProxyType
from typing import Mapping, Protocol, runtime_checkable

from wattwise.models.labels import MANAGED_LABEL
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


def _placement(pod: dict) -> tuple[str, str] | None:
    """(workload key, node) of a bound, unfinished WattWise pod, else None."""
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    value = (meta.get("labels") or {}).get(MANAGED_LABEL)
    node = spec.get("nodeName")
    if not value or not node or meta.get("deletionTimestamp") or status.get("phase") in ("Succeeded", "Failed"):
        return None
    key = value if "/" in value else f"{meta.get('namespace') or 'default'}/{value}"
    return key, node


class KubeReplicaCounts:
    def __init__(self, api_client, resync_s: float = 300.0, retry_s: float = 2.0, max_retry_s: float = 30.0):
        from kubernetes import client

        call = functools.partial(client.CoreV1Api(api_client).list_pod_for_all_namespaces,
                                 label_selector=MANAGED_LABEL)
        self._pods: dict[str, tuple[str, str]] = {}    # namespace/name -> (workload key, node)
        self._counts: Mapping[str, Mapping[str, int]] = MappingProxyType({})
        self._lock = threading.Lock()
        self.watch = ListWatch("pod", call, self, resync_s, retry_s=retry_s, max_retry_s=max_retry_s)

    def by_node(self, workload_key: str) -> Mapping[str, int]:
        return self._counts.get(workload_key, {})

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

    def apply(self, kind: str, obj: dict) -> None:
        with self._lock:
            if kind == "DELETED":
                self._pods.pop(self._id(obj), None)
            else:
                self._set(obj)
            self._recount()

    @staticmethod
    def _id(pod: dict) -> str:
        meta = pod.get("metadata") or {}
        return f"{meta.get('namespace')}/{meta.get('name')}"

    def _set(self, pod: dict) -> None:
        placed = _placement(pod)
        if placed is None:
            self._pods.pop(self._id(pod), None)
        else:
            self._pods[self._id(pod)] = placed

    def _recount(self) -> None:
        counts: dict[str, dict[str, int]] = {}
        for key, node in self._pods.values():
            per_node = counts.setdefault(key, {})
            per_node[node] = per_node.get(node, 0) + 1
        self._counts = MappingProxyType(counts)
