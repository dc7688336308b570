"""List, then watch from the list's resourceVersion, with the kubernetes client, in a thread.

A `410 Gone` (our version is too old: as a watch event or as the answer itself) or the end of the
resync period means list again; a watch the server closes is opened again from the last version
seen. Any other failure keeps what we have, is reported (`last_error`, and one log line each time
the kind of failure changes) and retried with backoff. Backoff ends only when the watch opens: a
list that works while the watch is refused (RBAC granting `list` without `watch`, or 429 Too Many
Requests) lists again at the backed-off pace, not every `retry_s`, and stays reported. A resource the API server does not serve
(404: its CRD is not installed) or may not be read (403: RBAC) is such a failure: reported in
words, retried, never fatal. Lists come in pages of `page_size` (limit/continue), so a large
cluster's pods are never one response in memory. The objects are handed over as raw API JSON
(no model classes: cheaper, and what the core reads).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Callable, Mapping, Protocol

import orjson

log = logging.getLogger(__name__)


class Sink(Protocol):
    def replace_all(self, items: list[dict]) -> None: ...

    def apply(self, kind: str, obj: dict) -> None: ...   # ADDED, MODIFIED or DELETED


class WatchExpired(Exception):
    """The API server answered 410 Gone: our resourceVersion (or continue token) is too old; list again."""


class ListWatch:
    """`list_call(**kwargs)` is a kubernetes client list method (e.g. `CoreV1Api.list_node`, or a
    `functools.partial` of one with a selector); it is called with `_preload_content=False` and,
    for watching, `watch=True`. `hints`: advice per HTTP status added to the error text (e.g.
    404: "is KEDA installed?")."""

    def __init__(self, what: str, list_call: Callable, sink: Sink, resync_s: float = 300.0,
                 watch_timeout_s: int = 240, retry_s: float = 2.0, max_retry_s: float = 30.0,
                 page_size: int = 500, hints: Mapping[int, str] | None = None):
        self.what = what
        self._call = list_call
        self._sink = sink
        self._resync_s = resync_s
        self._watch_timeout_s = watch_timeout_s
        self._retry_s, self._max_retry_s = retry_s, max_retry_s
        self._page_size = page_size
        self._hints = dict(hints or {})
        self._synced = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._resp = None
        self._last_heard: float | None = None
        self._failing: tuple | None = None   # the kind of the failure last logged, while failing
        self._watch_refused = False          # the last failure was the watch call itself (the list worked)
        self.retry_delay_s = retry_s         # the wait before the next retry, should the next call fail
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

    def request_stop(self) -> None:
        """Ask the thread to end (and unblock a watch read); `join` waits for it."""
        self._stop.set()
        resp = self._resp
        if resp is not None:
            try:
                resp.shutdown() if hasattr(resp, "shutdown") else resp.close()
            except Exception:  # noqa: BLE001 - best effort to unblock a read on shutdown
                log.debug("closing the %s watch stream failed", self.what, exc_info=True)

    def join(self, timeout_s: float) -> None:
        if self._thread is not None:
            self._thread.join(max(0.0, timeout_s))

    def stop(self, timeout_s: float = 5.0) -> None:
        self.request_stop()
        self.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                rv = self._list()
                deadline = time.monotonic() + self._resync_s
                while not self._stop.is_set() and time.monotonic() < deadline:
                    rv = self._watch(rv, max(1, min(self._watch_timeout_s, int(deadline - time.monotonic()))))
            except WatchExpired:
                log.info("%s watch expired (410 Gone): listing again", self.what)
            except Exception as e:  # noqa: BLE001 - keep what we have, report, retry
                if self._stop.is_set():
                    break
                self._failed(e, self.retry_delay_s)
                self._stop.wait(self.retry_delay_s)
                self.retry_delay_s = min(self.retry_delay_s * 2, self._max_retry_s)

    def _failed(self, e: Exception, delay: float) -> None:
        status = getattr(e, "status", None)
        self.last_error = describe(e, self._hints.get(status, "") if isinstance(status, int) else "")
        kind = (type(e).__name__, status)
        if kind != self._failing:   # one line per kind of failure, not one per retry
            log.warning("%s: %s; %s, retrying with backoff (%g s, at most %g s)", self.what, self.last_error,
                        "keeping what is known (it may be stale)" if self.synced else "nothing known yet",
                        delay, self._max_retry_s)
            self._failing = kind
        else:
            log.debug("%s: still failing: %s", self.what, self.last_error)

    def _list(self) -> str:
        items: list[dict] = []
        rv, token = "", None
        while True:
            kwargs: dict = {"limit": self._page_size} if self._page_size else {}
            if token:
                kwargs["_continue"] = token
            doc = self._request(kwargs)
            items.extend(o for o in doc.get("items") or ()
                         if isinstance(o, dict) and (o.get("metadata") or {}).get("name"))
            meta = doc.get("metadata") or {}
            rv = str(meta.get("resourceVersion") or rv)
            token = meta.get("continue")
            if not token or self._stop.is_set():
                break
        self._last_heard = time.monotonic()
        self.lists += 1
        if not self._watch_refused:   # else still failing: recovered once the watch opens
            self._recovered("listed again after errors")
        self._sink.replace_all(items)
        self._synced.set()
        log.info("%s: listed %d at resourceVersion %s", self.what, len(items), rv)
        return rv

    def _recovered(self, said: str) -> None:
        if self._failing is not None:
            log.info("%s: %s", self.what, said)
        self._failing = None
        self.last_error = ""    # before the sink says it is synced: readers never see both
        self.retry_delay_s = self._retry_s

    def _request(self, kwargs: dict) -> dict:
        try:
            resp = self._call(_preload_content=False, _request_timeout=(5, 60), **kwargs)
        except Exception as e:
            if getattr(e, "status", None) == 410:   # an expired continue token
                raise WatchExpired() from None
            raise
        try:
            return orjson.loads(resp.data)
        finally:
            resp.release_conn()

    def _watch(self, rv: str, timeout_s: int) -> str:
        from kubernetes.watch.watch import iter_resp_lines

        try:
            resp = self._call(watch=True, resource_version=rv, allow_watch_bookmarks=True, timeout_seconds=timeout_s,
                              _preload_content=False, _request_timeout=(5, timeout_s + 15))
        except Exception as e:
            if getattr(e, "status", None) == 410:
                raise WatchExpired() from None
            self._watch_refused = True
            raise
        self._watch_refused = False
        self._recovered("watching again after errors")
        self._resp = resp
        try:
            if self._stop.is_set():   # asked to stop before `_resp` was there to be closed
                return rv
            for line in iter_resp_lines(resp):
                if self._stop.is_set():
                    break
                if line.strip():
                    rv = self._event(orjson.loads(line), rv)   # orjson shares key strings: less memory per object
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
            log.debug("%s: ignoring watch event %s", self.what, kind)
        return new_rv


_MEANING = {401: "unauthorized (401): the credentials were refused",
            403: "forbidden (403)",
            404: "the API server does not serve this resource (404 Not Found)"}


def describe(e: Exception, hint: str = "") -> str:
    """One line about a failed call: the HTTP status in words and the API server's own message
    for an API error (the kubernetes client's text is several lines with every header), else the
    exception's type and text."""
    status = getattr(e, "status", None)
    if isinstance(status, int) and hasattr(e, "body"):
        message = _server_message(getattr(e, "body", None))
        text = _MEANING.get(status, f"HTTP {status} {getattr(e, 'reason', '') or ''}".strip())
        text += f": {message}" if message else ""
    else:
        text = f"{type(e).__name__}: {e}"
    text = " ".join(text.split())
    return f"{text} ({hint})" if hint else text


def _server_message(body) -> str:
    """The `message` of a v1 Status body, else the body's first line (e.g. "404 page not found")."""
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    if not isinstance(body, str) or not body.strip():
        return ""
    try:
        doc = json.loads(body)
    except ValueError:
        return body.strip().splitlines()[0][:300]
    return str(doc.get("message") or "")[:300] if isinstance(doc, dict) else ""
