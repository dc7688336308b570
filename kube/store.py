"""The current objects of one resource, as the API server's JSON, fed by one `ListWatch`.

`ObjectStore` is the `Sink` of a `ListWatch`: a (re)list replaces everything, each watch event
changes one object. It keeps only the current objects, keyed by (namespace, name) (namespace ""
for cluster-scoped ones), so its memory is the cluster's size and no history is kept. Readers in
any thread get an immutable `StoreSnapshot` (a tuple of the objects and the `version` it is),
built at most once per version; `version` goes up by one on every change, and a relist that
changes nothing is no change. `spec_version` goes up only when an object comes, goes or changes
its `metadata.generation` (its spec: the API server leaves the generation of a status update as
it was; an object without one counts every change): what reads templates, not status, keys on it,
so a Deployment's status updates (every scale, every pod ready) rebuild nothing. The stored dicts are shared by every reader: read them, never
write them.

Views derived from one store (the extender's node set, the pods of WattWise's workloads) follow
it with `StoreView`: they are told of every change on the watch thread, with the version it made,
and apply it incrementally, or rebuild from a snapshot after a relist or whenever they missed a
change, so they never drift from the store.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, NamedTuple

if TYPE_CHECKING:
    from wattwise.kube.list_watch import ListWatch

log = logging.getLogger(__name__)

LISTED = "LISTED"   # Change.kind after a relist that changed something: read the snapshot

# Bookkeeping nobody here reads, and often half an object's size: left out of stored objects.
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

Key = tuple[str, str]   # (namespace or "", name)


class Change(NamedTuple):
    kind: str             # LISTED, ADDED, MODIFIED or DELETED
    obj: dict | None      # the object as stored (DELETED: as last seen); None for LISTED
    version: int          # the store's version after this change


@dataclass(frozen=True)
class StoreSnapshot:
    version: int
    items: tuple[dict, ...]


def key_of(obj: dict) -> Key:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _stripped(obj: dict, strip: bool) -> dict:
    """The object without metadata.managedFields and the last-applied annotation. The object is
    fresh from the JSON decoder and ours alone, so it is trimmed in place."""
    meta = obj.get("metadata")
    if strip and isinstance(meta, dict):
        meta.pop("managedFields", None)
        annotations = meta.get("annotations")
        if isinstance(annotations, dict) and LAST_APPLIED in annotations:
            meta["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
    return obj


class ObjectStore:
    def __init__(self, what: str, strip: bool = True):
        """`what`: the resource, for status and logs. `strip`: leave out managedFields and the
        kubectl last-applied-configuration annotation (memory)."""
        self.what = what
        self.watch: ListWatch | None = None     # set by whoever feeds it (KubeCluster)
        self._strip = strip
        self._lock = threading.Lock()
        self._objects: dict[Key, dict] = {}
        self._version = 0
        self._spec_version = 0
        self._snapshot = StoreSnapshot(0, ())
        self._synced = threading.Event()
        self._listeners: list[Callable[[Change], None]] = []

    # -- reading (any thread) ---------------------------------------------------------------------
    def snapshot(self) -> StoreSnapshot:
        with self._lock:
            if self._snapshot.version != self._version:
                self._snapshot = StoreSnapshot(self._version, tuple(self._objects.values()))
            return self._snapshot

    def items(self) -> tuple[dict, ...]:
        return self.snapshot().items

    def get(self, namespace: str, name: str) -> dict | None:
        """The object, or None; `namespace` "" for a cluster-scoped resource."""
        with self._lock:
            return self._objects.get((namespace or "", name))

    @property
    def version(self) -> int:
        return self._version

    @property
    def spec_version(self) -> int:
        return self._spec_version

    def __len__(self) -> int:
        return len(self._objects)

    @property
    def synced(self) -> bool:
        """Listed at least once (what it holds may be stale: see `last_error` and `age_s`)."""
        return self._synced.is_set()

    def wait_synced(self, timeout_s: float) -> bool:
        return self._synced.wait(timeout_s)

    @property
    def last_error(self) -> str:
        """Why the last list or watch failed, "" once it works again."""
        return self.watch.last_error if self.watch is not None else ""

    def age_s(self) -> float:
        """Seconds since the API server last told us anything about this resource (inf: never)."""
        return self.watch.age_s() if self.watch is not None else (0.0 if self.synced else float("inf"))

    @property
    def lists(self) -> int:
        return self.watch.lists if self.watch is not None else 0

    def status(self) -> str:
        error = self.last_error
        if not self.synced:
            return f"{self.what}: not listed yet" + (f": {error}" if error else "")
        text = f"{self.what}: {len(self)}, last heard from the API server {self.age_s():.0f} s ago"
        return text + (f"; failing now: {error}" if error else "")

    def subscribe(self, fn: Callable[[Change], None]) -> None:
        """Call `fn` on the watch thread after every change (see `StoreView`). It must be quick
        and must not block; an exception is logged and the watch goes on."""
        with self._lock:
            self._listeners.append(fn)

    # -- the watch thread's sink ------------------------------------------------------------------
    def replace_all(self, items: list[dict]) -> None:
        objects = {key_of(o): _stripped(o, self._strip) for o in items}
        with self._lock:
            same = objects.keys() == self._objects.keys() and all(
                _rv(o) and _rv(o) == _rv(self._objects[k]) for k, o in objects.items())
            if not same:
                if objects.keys() != self._objects.keys() or any(
                        _spec_changed(self._objects[k], o) for k, o in objects.items()):
                    self._spec_version += 1
                self._objects = objects
                self._version += 1
            version = self._version
        if not same:
            self._notify(Change(LISTED, None, version))
        self._synced.set()     # after the views took the list in: synced means they show it too

    def apply(self, kind: str, obj: dict) -> None:
        key = key_of(obj)
        with self._lock:
            old = self._objects.get(key)
            if kind == "DELETED":
                if old is None:
                    return
                del self._objects[key]
                self._spec_version += 1
            else:
                if old is not None and _rv(old) and _rv(old) == _rv(obj):
                    return   # seen already (a watch reopened from an older version)
                obj = _stripped(obj, self._strip)
                self._objects[key] = obj
                if old is None or _spec_changed(old, obj):
                    self._spec_version += 1
            self._version += 1
            version = self._version
        self._notify(Change(kind, obj, version))

    def _notify(self, change: Change) -> None:
        for fn in tuple(self._listeners):
            try:
                fn(change)
            except Exception:  # noqa: BLE001 - a reader's failure must not stop the watch
                log.exception("%s: a listener failed on %s", self.what, change.kind)


def _rv(obj: dict) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


class StoreView:
    """Base of a view derived from one `ObjectStore`. Subclasses set their fields, then call
    `super().__init__(store)`, and implement `_rebuild(items)` and `_apply(kind, obj)`; both run
    one at a time under the view's lock (on the watch thread, or in the constructor for the first
    build), `_apply` only when the store is exactly that change ahead of the view."""

    def __init__(self, store: ObjectStore):
        self.store = store
        self._view_lock = threading.Lock()
        self._seen = -1            # the store version the view reflects
        store.subscribe(self._changed)
        self._changed(None)

    def _changed(self, change: Change | None) -> None:
        with self._view_lock:
            if change is not None and change.version <= self._seen:
                return   # already in the snapshot the view was built from
            if change is not None and change.kind != LISTED and change.version == self._seen + 1:
                assert change.obj is not None
                changed = self._apply(change.kind, change.obj)
                self._seen = change.version
            else:
                snap = self.store.snapshot()
                if snap.version <= self._seen:
                    return
                changed = self._rebuild(snap.items)
                self._seen = snap.version
        if changed:
            self._after_change()

    def _rebuild(self, items: tuple[dict, ...]) -> bool:
        """Build the view from all the store's objects; True when what it shows changed."""
        raise NotImplementedError

    def _apply(self, kind: str, obj: dict) -> bool:
        """Take in one change (ADDED, MODIFIED, DELETED); True when what the view shows changed."""
        raise NotImplementedError

    def _after_change(self) -> None:
        """Called after the view changed, outside its lock (e.g. to tell its own readers)."""


def _spec_changed(old: dict, new: dict) -> bool:
    """Whether `new` may differ from `old` in more than status: a new generation, or none to tell."""
    generation = (new.get("metadata") or {}).get("generation")
    return generation is None or generation != (old.get("metadata") or {}).get("generation")
