"""The extender's own view of the cluster's nodes (nodeCacheCapable: true sends names only).

`KubeNodeCache` lists Nodes with the kubernetes client, then watches from the list's
resourceVersion; a 410 Gone (the version is too old) means list again; every `resync_s` it lists
again anyway, so a missed event cannot live long (`list_watch.py`). It runs in its own thread and
publishes an immutable `NodeSet`, so handlers never wait for it. `StaticNodeCache` holds fixed nodes (the
demo's scenario, tests, the benchmark).
"""

from __future__ import annotations

import logging
import threading
from types import MappingProxyType
from typing import Protocol, runtime_checkable

from wattwise.models.labels import DEFAULT_MAPPING, LabelMapping
from wattwise.models.snapshot import Snapshot
from wattwise.scheduler.list_watch import ListWatch
from wattwise.scheduler.nodeset import EMPTY, ConversionMemo, NodeEntry, NodeSet, convert_node, nodeset_from_entries

log = logging.getLogger(__name__)


@runtime_checkable
class NodeCache(Protocol):
    def nodes(self) -> NodeSet: ...

    @property
    def ready(self) -> bool: ...

    def status(self) -> str: ...

    def sync_age_s(self) -> float: ...


class StaticNodeCache:
    def __init__(self, nodeset: NodeSet, description: str = "static nodes"):
        self._nodes = nodeset
        self._description = description

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot) -> "StaticNodeCache":
        entries = [NodeEntry(n.name, "snapshot", n, snapshot.node_classes[n.node_class]) for n in snapshot.nodes]
        return cls(nodeset_from_entries(entries, 1), f"{len(entries)} nodes from the scenario snapshot")

    @classmethod
    def from_node_json(cls, objects, mapping: LabelMapping = DEFAULT_MAPPING) -> "StaticNodeCache":
        entries = [convert_node(o, mapping) for o in objects]
        return cls(nodeset_from_entries(entries, 1), f"{len(entries)} nodes given as JSON")

    def nodes(self) -> NodeSet:
        return self._nodes

    @property
    def ready(self) -> bool:
        return True

    def status(self) -> str:
        return self._description

    def sync_age_s(self) -> float:
        return 0.0


class PlanSnapshotNodeCache:
    """The nodes of the plan source's current snapshot (the demo: the scenario's nodes, as the
    scaler's refresher sees them). Not ready until the source has a plan."""

    def __init__(self, source):
        self._source = source
        self._snapshot = None
        self._nodes = EMPTY

    def nodes(self) -> NodeSet:
        try:
            snapshot = self._source.current().snapshot
        except Exception:  # noqa: BLE001 - no plan yet: no nodes yet (readyz says so)
            return self._nodes
        if snapshot is not self._snapshot:
            old = self._nodes.entries
            entries = []
            for n in snapshot.nodes:
                cls = snapshot.node_classes[n.node_class]
                prev = old.get(n.name)
                same = prev is not None and prev.node == n and prev.node_class == cls
                entries.append(prev if same else NodeEntry(n.name, "snapshot", n, cls))
            self._nodes = nodeset_from_entries(entries, self._nodes.version + 1)
            self._snapshot = snapshot
        return self._nodes

    @property
    def ready(self) -> bool:
        try:
            self._source.current()
        except Exception:  # noqa: BLE001
            return False
        return True

    def status(self) -> str:
        return f"{len(self.nodes())} nodes from the plan's snapshot" if self.ready else "no plan yet"

    def sync_age_s(self) -> float:
        return 0.0


class KubeNodeCache:
    """Nodes from the API server: list + watch of /api/v1/nodes (see `list_watch.ListWatch`)."""

    def __init__(self, api_client, mapping: LabelMapping = DEFAULT_MAPPING, resync_s: float = 300.0,
                 watch_timeout_s: int = 240, retry_s: float = 2.0, max_retry_s: float = 30.0):
        from kubernetes import client

        self._memo = ConversionMemo(mapping)
        self._nodes: NodeSet = EMPTY
        self._version = 0
        self._lock = threading.Lock()   # the watch thread is the only writer; this guards resyncs vs events
        self._watch = ListWatch("node", client.CoreV1Api(api_client).list_node, self, resync_s, watch_timeout_s,
                                retry_s, max_retry_s)

    # -- reading (any thread) ---------------------------------------------------------------------
    def nodes(self) -> NodeSet:
        return self._nodes

    @property
    def ready(self) -> bool:
        return self._watch.synced

    def wait_ready(self, timeout_s: float) -> bool:
        return self._watch.wait_synced(timeout_s)

    def sync_age_s(self) -> float:
        return self._watch.age_s()

    @property
    def lists(self) -> int:
        return self._watch.lists

    @property
    def last_error(self) -> str:
        return self._watch.last_error

    def status(self) -> str:
        error = self._watch.last_error
        if not self.ready:
            return f"node cache not synced yet{': ' + error if error else ''}"
        text = f"{len(self._nodes)} nodes, last heard from the API server {self.sync_age_s():.0f} s ago"
        return text + (f"; last error: {error}" if error else "")

    def start(self) -> "KubeNodeCache":
        self._watch.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._watch.stop(timeout_s)

    # -- the watch thread's sink -------------------------------------------------------------------
    def replace_all(self, items: list[dict]) -> None:
        # An unchanged node keeps the same entry object, so decision memos stay valid.
        entries = {o["metadata"]["name"]: self._memo.convert(o) for o in items}
        with self._lock:
            self._publish(entries)

    def apply(self, kind: str, obj: dict) -> None:
        name = obj["metadata"]["name"]
        with self._lock:
            if kind == "DELETED":
                if name not in self._nodes.entries:
                    return
                entries = dict(self._nodes.entries)   # copy on write: readers never see a half update
                entries.pop(name)
            else:
                entry = self._memo.convert(obj)
                if self._nodes.entries.get(name) is entry:
                    return   # a heartbeat: nothing the decisions read has changed
                entries = dict(self._nodes.entries)
                entries[name] = entry
            self._publish(entries)
        log.debug("node cache: %s %s", kind, name)

    def _publish(self, entries: dict[str, NodeEntry]) -> None:
        self._version += 1
        self._nodes = NodeSet(MappingProxyType(entries), self._version)


def api_client_from(kubeconfig: str | None = None, in_cluster: bool = False):
    """A kubernetes ApiClient: in-cluster service account, a kubeconfig file, or the default."""
    from kubernetes import client, config

    if in_cluster:
        config.load_incluster_config()
        return client.ApiClient()
    return config.new_client_from_config(config_file=kubeconfig)
