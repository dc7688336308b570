"""Nodes as the extender sees them: each Kubernetes Node converted once through the core's label
mapping into a `models.placement.NodeEntry`, kept with the resource version it was converted from.

A `NodeSet` is an immutable name -> `NodeEntry` mapping with a version. Caches replace it whole
when a node changes (copy-on-write), so request handlers read it without locks; an entry object
that did not change stays the same object, which lets the decision memo invalidate per node.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from wattwise.models.eligibility import Reason
from wattwise.models.errors import InvalidInputError
from wattwise.models.labels import DEFAULT_MAPPING, LabelMapping, node_from_k8s
from wattwise.models.placement import NodeEntry

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class NodeSet:
    entries: Mapping[str, NodeEntry] = field(default_factory=lambda: MappingProxyType({}))
    version: int = 0

    def get(self, name: str) -> NodeEntry | None:
        return self.entries.get(name)

    def __len__(self) -> int:
        return len(self.entries)


EMPTY = NodeSet()


def convert_node(obj: dict, mapping: LabelMapping = DEFAULT_MAPPING) -> NodeEntry:
    """Node JSON to an entry. Raises InvalidInputError only when the node has no name."""
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    name = meta.get("name") if isinstance(meta, dict) else None
    if not isinstance(name, str) or not name:
        raise InvalidInputError("metadata.name", "a Node needs a name")
    rv = str(meta.get("resourceVersion") or "")
    try:
        node, node_class = node_from_k8s(obj, mapping)
    except (InvalidInputError, TypeError, ValueError, AttributeError) as e:
        log.warning("node %s: cannot read its labels or resources: %s", _short(name), _short(str(e), 300))
        return NodeEntry(name, rv, None, None, UNREADABLE)
    return NodeEntry(name, rv, node, node_class)


def _short(text: str, limit: int = 80) -> str:
    """At most `limit` characters of a value from the wire, for the log."""
    return text if len(text) <= limit else text[:limit] + "..."


# what is wrong with each one is in the log above, by name: the reason is one for all (see eligibility)
UNREADABLE = Reason("node(s) with labels or resources the WattWise extender cannot read (its log says why)",
                    "unreadable_node")


def _inputs(obj: dict) -> tuple:
    """Everything node_from_k8s reads from a Node, to compare with what a memo entry came from."""
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    ready = [c.get("status") for c in status.get("conditions") or () if isinstance(c, dict) and c.get("type") == "Ready"]
    return (meta.get("labels"), status.get("allocatable"), status.get("capacity"), ready, spec.get("unschedulable"),
            spec.get("taints"))


class ConversionMemo:
    """The last converted entry per node name, reused while everything `node_from_k8s` reads is
    unchanged (labels, allocatable, capacity, readiness, cordon, taints). A new resourceVersion alone
    (a status heartbeat) keeps the same entry object, so nothing downstream is recomputed; any
    change of those inputs converts again: a node is never judged on stale TEE labels."""

    def __init__(self, mapping: LabelMapping = DEFAULT_MAPPING, max_entries: int = 20_000):
        """`max_entries`: nodes remembered (4x the 5,000 an extender is sized for); an entry keeps
        the node's labels and resources from its JSON, a few KB, so at most ~50 MB. Past it the
        memo starts again empty."""
        self._mapping = mapping
        self._max = max_entries
        self._memo: dict[str, tuple[tuple, NodeEntry]] = {}

    def convert(self, obj: dict) -> NodeEntry:
        meta = obj.get("metadata") if isinstance(obj, dict) else None
        name = meta.get("name") if isinstance(meta, dict) else None
        if not isinstance(name, str) or not name:
            return convert_node(obj, self._mapping)   # raises: a Node needs a name
        inputs = _inputs(obj)
        hit = self._memo.get(name)
        if hit is not None and hit[0] == inputs:
            return hit[1]
        entry = convert_node(obj, self._mapping)
        if len(self._memo) >= self._max:
            self._memo.clear()
        self._memo[name] = (inputs, entry)
        return entry


def nodeset_from_entries(entries, version: int) -> NodeSet:
    return NodeSet(MappingProxyType({e.name: e for e in entries}), version)
