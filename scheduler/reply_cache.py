"""Recent replies, for the burst of look-alike pods a scale-up creates.

When KEDA adds ten replicas of a workload, kube-scheduler asks about ten pods with the same
workload, TEE and usually the same candidate names. Their replies are identical as long as the
plan view, the node set and the names are: this keeps the last few, keyed by exactly that, so a
repeat costs a hash of the names (`wire.ExtenderArgs.names_key`: one string) instead of a
look-up of each. The names are compared in full on a hit (no trust in hashes alone).

Requests the names-mode accelerator reads (fragments.NameIndex.find: kube-scheduler's plain form)
never come here: reading them afresh costs less than decoding them. This serves the rest, and
every names-mode request when the accelerator is not built.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable


class ReplyCache:
    def __init__(self, max_entries: int = 32):
        self._max = max_entries
        self._entries: OrderedDict[tuple, tuple[Hashable, object]] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self._pending: tuple | None = None   # ((key, hash), names) of the last miss, reused by put()

    def get(self, key: tuple, names: Hashable):
        """The reply stored for exactly (key, names), else None."""
        full = (key, hash(names))   # hashed once per call: put() reuses it
        hit = self._entries.get(full)
        if hit is not None and hit[0] == names:
            self._entries.move_to_end(full)
            self.hits += 1
            return hit[1]
        self.misses += 1
        self._pending = (full, names)
        return None

    def put(self, key: tuple, names: Hashable, value) -> None:
        """Store after a `get` miss for the same key and names."""
        pending, self._pending = self._pending, None
        full = pending[0] if pending is not None and pending[1] is names and pending[0][0] == key else (key, hash(names))
        self._entries[full] = (names, value)
        self._entries.move_to_end(full)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
