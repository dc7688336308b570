"""List, then watch from the list's resourceVersion, with the kubernetes client, in a thread.

A `410 Gone` (our version is too old) or the end of the resync period means list again; any other
failure keeps what we have, is reported (`last_error`, logs) and retried with backoff. The
objects are handed over as raw API JSON (no model classes: cheaper, and what the core reads).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Callable, Protocol

log = logging.getLogger(__name__)


class Sink(Protocol):
    def replace_all(self, items: list[dict]) -> None: ...

    def apply(self, kind: str, obj: dict) -> None: ...   # ADDED, MODIFIED or DELETED


class WatchExpired(Exception):
    """The API server answered 410 Gone: our resourceVersion is too old; list again."""


class ListWatch:
    """`list_call(**kwargs)` is a kubernetes client list method (e.g. `CoreV1Api.list_node`, or a
    `functools.partial` of one with a label selector); it is called with `_preload_content=False`
    and, for watching, `watch=True`."""

    def __init__(self, what: str, list_call: Callable, sink: Sink, resync_s: float = 300.0,
                 watch_timeout_s: int = 240, retry_s: float = 2.0, max_retry_s: float = 30.0):
        self.what = what
        self._call = list_call
        self._sink = sink
        self._resync_s = resync_s
        self._watch_timeout_s = watch_timeout_s
        self._retry_s, self._max_retry_s = retry_s, max_retry_s
        self._synced = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._resp = None
        self._last_heard: float | None = None
        self.lists = 0          # full lists so far (initial, resync, after 410)
        self.last_error = ""

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    def wait_synced(self, timeout_s: float) -> bool:
        return self._synced.wait(timeout_s)

    def age_s(self) -> float:
        """Seconds since the API server last told us anything (inf: never)."""
        return float("inf") if self._last_heard is None else time.monotonic() - self._last_heard

    def start(self) -> "ListWatch":
        self._thread = threading.Thread(target=self._run, name=f"wattwise-{self.what}-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        resp = self._resp
        if resp is not None:
            try:
                resp.shutdown() if hasattr(resp, "shutdown") else resp.close()
            except Exception:  # noqa: BLE001 - best effort to unblock a read on shutdown
                log.debug("closing the %s watch stream failed", self.what, exc_info=True)
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        delay = self._retry_s
        while not self._stop.is_set():
            try:
                rv = self._list()
                delay = self._retry_s
                deadline = time.monotonic() + self._resync_s
                while not self._stop.is_set() and time.monotonic() < deadline:
                    rv = self._watch(rv, max(1, min(self._watch_timeout_s, int(deadline - time.monotonic()))))
            except WatchExpired:
                log.info("%s watch expired (410 Gone): listing again", self.what)
            except Exception as e:  # noqa: BLE001 - keep what we have, report, retry
                if self._stop.is_set():
                    break
                self.last_error = f"{type(e).__name__}: {e}"
                log.warning("%s cache: %s; keeping what is known (it may be stale), retrying in %.1f s",
                            self.what, self.last_error, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, self._max_retry_s)

    def _list(self) -> str:
        resp = self._call(_preload_content=False, _request_timeout=(5, 60))
        try:
            doc = json.loads(resp.data)
        finally:
            resp.release_conn()
        items = [o for o in doc.get("items") or () if isinstance(o, dict) and (o.get("metadata") or {}).get("name")]
        self._sink.replace_all(items)
        self._last_heard = time.monotonic()
        self.lists += 1
        self.last_error = ""
        self._synced.set()
        rv = str((doc.get("metadata") or {}).get("resourceVersion") or "")
        log.info("%s cache: listed %d at resourceVersion %s", self.what, len(items), rv)
        return rv

    def _watch(self, rv: str, timeout_s: int) -> str:
        from kubernetes.watch.watch import iter_resp_lines

        resp = self._call(watch=True, resource_version=rv, allow_watch_bookmarks=True, timeout_seconds=timeout_s,
                          _preload_content=False, _request_timeout=(5, timeout_s + 15))
        self._resp = resp
        try:
            for line in iter_resp_lines(resp):
                if self._stop.is_set():
                    break
                if line.strip():
                    rv = self._event(json.loads(line), rv)
        finally:
            self._resp = None
            resp.release_conn()
        self._last_heard = time.monotonic()
        return rv

    def _event(self, event: dict, rv: str) -> str:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            code = obj.get("code")
            if code == 410:
                raise WatchExpired()
            raise RuntimeError(f"watch error {code}: {obj.get('reason')}: {obj.get('message')}")
        self._last_heard = time.monotonic()
        new_rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
        if kind in ("ADDED", "MODIFIED", "DELETED") and (obj.get("metadata") or {}).get("name"):
            self._sink.apply(kind, obj)
        elif kind != "BOOKMARK":
            log.debug("%s cache: ignoring watch event %s", self.what, kind)
        return new_rv
