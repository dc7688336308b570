"""The scaler's cache of parsed trigger metadata. The parse itself is the core's
(`wattwise.models.trigger_metadata`, also used for ScaledObjects read from the API server); its
names are re-exported here for the scaler's modules.

`MetadataCache` keeps only valid requests the registry holds, within a byte budget.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Mapping

from wattwise.models.trigger_metadata import (ACCEPTED_KEYS, KEDA_OWN_KEYS, MAX_KEY_CHARS, MAX_KEYS,
                                              MAX_NAME_CHARS, MAX_NAMESPACE_CHARS, MAX_VALUE_CHARS, QUOTE_CHARS,
                                              DemandSpec, MetadataError, ScalerRequest, check_limits,
                                              parse_metadata, quote)

__all__ = ["ACCEPTED_KEYS", "KEDA_OWN_KEYS", "MAX_KEY_CHARS", "MAX_KEYS", "MAX_NAME_CHARS", "MAX_NAMESPACE_CHARS",
           "MAX_VALUE_CHARS", "QUOTE_CHARS", "DemandSpec", "MetadataCache", "MetadataError", "ScalerRequest",
           "check_limits", "parse_metadata", "quote"]


class MetadataCache:
    """Valid requests by their exact input, so a poll repeated every 15 s is parsed once.

    Bounded in bytes (`max_bytes`, least recently used dropped first); oversized input is refused
    before it is keyed (`check_limits`); a refused input is never kept; and `discard` drops what
    the registry no longer holds (a ScaledObject changed, expired or lost its workload to another).
    Thread-safe: the gRPC loop parses, the refresher thread expires registrations."""

    def __init__(self, max_bytes: int = 32 * 1024 * 1024):
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple, tuple[ScalerRequest, int]] = OrderedDict()
        self._by_workload: dict[str, set[tuple]] = {}
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    def parse(self, name: str, namespace: str, metadata: Mapping[str, str]) -> ScalerRequest:
        check_limits(name, namespace, metadata)
        kept = tuple(sorted((k, v) for k, v in metadata.items() if k not in KEDA_OWN_KEYS))
        key = (name, namespace, kept)
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit[0]
        request = parse_metadata(name, namespace, metadata)     # raises: nothing kept
        size = _size(key)
        with self._lock:
            if key not in self._items and size <= self.max_bytes:
                self._items[key] = (request, size)
                self._by_workload.setdefault(request.workload_key, set()).add(key)
                self.bytes += size
                while self.bytes > self.max_bytes:
                    self._drop(next(iter(self._items)))
        return request

    def discard(self, request: ScalerRequest) -> None:
        """Forget the inputs that gave `request` (the registry no longer holds it)."""
        with self._lock:
            for key in list(self._by_workload.get(request.workload_key, ())):
                if self._items[key][0] == request:
                    self._drop(key)

    def _drop(self, key: tuple) -> None:
        request, size = self._items.pop(key)
        self.bytes -= size
        keys = self._by_workload[request.workload_key]
        keys.discard(key)
        if not keys:
            del self._by_workload[request.workload_key]


def _size(key: tuple) -> int:
    """Bytes an entry holds, near enough: its strings (the request's mostly point at the same
    text) plus a fixed overhead for the objects around them."""
    name, namespace, items = key
    return 2 * (len(name) + len(namespace) + sum(len(k) + len(v) for k, v in items)) + 1024
