"""The extender's own view of the cluster's nodes (nodeCacheCapable: true sends names only).

`KubeNodeCache` is a view over the process's one node store (`wattwise.kube.KubeCluster.nodes`:
list, then watch from the list's resourceVersion, list again after a 410 Gone and every
`resync_s`). It follows the store on the watch thread and publishes an immutable `NodeSet`, so
handlers never wait for it. `StaticNodeCache` holds fixed nodes (the demo's scenario, tests, the
benchmark).
"""

from __future__ import annotations

import logging
from types import MappingProxyType
from typing import Protocol, runtime_checkable

from wattwise.kube.store import ObjectStore, StoreView
from wattwise.models.labels import DEFAULT_MAPPING, LabelMapping
from wattwise.models.snapshot import Snapshot
from wattwise.scheduler.nodeset import EMPTY, ConversionMemo, NodeEntry, NodeSet, convert_node, nodeset_from_entries

log = logging.getLogger(__name__)


@runtime_checkable
class NodeCache(Protocol):
    def nodes(self) -> NodeSet: ...

    @property
    def ready(self) -> bool: ...

    def status(self) -> str: ...

    def sync_age_s(self) -> float: ...

    def stale(self) -> str:
        """Why the nodes may no longer be what the API server holds ("" while they are current)."""
        ...


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

    def stale(self) -> str:
        return ""


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

    def stale(self) -> str:
        return ""

    def sync_age_s(self) -> float:
        return 0.0


class KubeNodeCache(StoreView):
    """Nodes from the API server: a view over the process's one node store (`KubeCluster.nodes`).
    Each node is converted when something the decisions read changes (`ConversionMemo`); an
    unchanged node keeps the same entry object across heartbeats and relists, so decision memos
    stay valid.

    Nodes not heard of for `stale_after_s` (a watch that keeps failing: the API server unreachable,
    or RBAC withdrawn) are stale: a TEE label or device-plugin resource removed since (a driver or
    attestation fault) would not be seen, so the cache is not ready and pods that need a TEE are
    refused everywhere until it is current again. A healthy watch is heard from at least every few
    minutes (bookmarks, its `timeoutSeconds`, the resync), so the default of 600 s is twice the
    resync period."""

    def __init__(self, nodes: ObjectStore, mapping: LabelMapping = DEFAULT_MAPPING, stale_after_s: float = 600.0):
        self._memo = ConversionMemo(mapping)
        self.stale_after_s = stale_after_s
        self._nodes: NodeSet = EMPTY
        super().__init__(nodes)

    # -- reading (any thread) ---------------------------------------------------------------------
    def nodes(self) -> NodeSet:
        return self._nodes

    @property
    def ready(self) -> bool:
        return self.store.synced and not self.stale()

    def stale(self) -> str:
        age_s = self.store.age_s()
        if not self.store.synced or age_s < self.stale_after_s:
            return ""
        return f"the extender's node cache has not heard from the API server for {age_s:.0f} s"

    def wait_ready(self, timeout_s: float) -> bool:
        return self.store.wait_synced(timeout_s)

    def sync_age_s(self) -> float:
        return self.store.age_s()

    @property
    def lists(self) -> int:
        return self.store.lists

    @property
    def last_error(self) -> str:
        return self.store.last_error

    def status(self) -> str:
        error = self.store.last_error
        if not self.store.synced:
            return f"node cache not synced yet{': ' + error if error else ''}"
        text = f"{len(self._nodes)} nodes, last heard from the API server {self.sync_age_s():.0f} s ago"
        text += f" (stale after {self.stale_after_s:.0f} s: pods that need a TEE are refused)" if self.stale() else ""
        return text + (f"; last error: {error}" if error else "")

    # -- following the node store (the watch thread) -------------------------------------------------
    def _rebuild(self, items: tuple[dict, ...]) -> bool:
        entries = {o["metadata"]["name"]: self._memo.convert(o) for o in items}
        old = self._nodes.entries
        if entries.keys() == old.keys() and all(old[n] is e for n, e in entries.items()):
            return False
        self._publish(entries)
        return True

    def _apply(self, kind: str, obj: dict) -> bool:
        name = obj["metadata"]["name"]
        if kind == "DELETED":
            if name not in self._nodes.entries:
                return False
            entries = dict(self._nodes.entries)   # copy on write: readers never see a half update
            entries.pop(name)
        else:
            entry = self._memo.convert(obj)
            if self._nodes.entries.get(name) is entry:
                return False   # a heartbeat: nothing the decisions read has changed
            entries = dict(self._nodes.entries)
            entries[name] = entry
        self._publish(entries)
        log.debug("node cache: %s %s", kind, name)
        return True

    def _publish(self, entries: dict[str, NodeEntry]) -> None:
        self._nodes = NodeSet(MappingProxyType(entries), self._nodes.version + 1)
