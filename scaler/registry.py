"""ScaledObjects the scaler has heard from, by workload.

KEDA never says when a ScaledObject is deleted, so an entry lives while KEDA keeps calling
(every poll and HPA sync touches it, an open push stream too) and is dropped `ttl_s` after the
last call. A new or changed entry wakes the refresher, so the plan includes it within moments.
What the registry lets go (a request replaced by a different one, or expired) is passed to the
`on_forget` listeners, so nothing elsewhere keeps it (the metadata cache, per-workload gauges).
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

from wattwise.models.trigger_metadata import ScalerRequest

log = logging.getLogger(__name__)


class Registry:
    def __init__(self, clock: Callable[[], float], ttl_s: float = 600.0):
        self._clock = clock
        self._ttl_s = ttl_s
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[ScalerRequest, float]] = {}
        self._listeners: list[Callable[[], None]] = []
        self._forget: list[Callable[[ScalerRequest, bool], None]] = []

    def on_change(self, fn: Callable[[], None]) -> None:
        self._listeners.append(fn)

    def on_forget(self, fn: Callable[[ScalerRequest, bool], None]) -> None:
        """`fn(request, workload_gone)`: the registry no longer holds `request`; `workload_gone`
        when no request for its workload is left either (expired, not replaced)."""
        self._forget.append(fn)

    def _forgotten(self, request: ScalerRequest, gone: bool) -> None:
        for fn in self._forget:
            try:
                fn(request, gone)
            except Exception:  # noqa: BLE001 - a listener's failure must not break registration
                log.exception("registry forget listener failed")

    def touch(self, request: ScalerRequest) -> bool:
        """Record a call; True when this changes what gets planned."""
        now = self._clock()
        key = request.workload_key
        with self._lock:
            old = self._entries.get(key)
            self._entries[key] = (request, now)
        changed = old is None or (old[0] is not request and not old[0].same_plan_inputs(request))
        if old is not None and old[0] is not request and old[0] != request:
            self._forgotten(old[0], False)
        if changed:
            if old is not None and (old[0].scaled_object, old[0].scaled_object_namespace) != (
                    request.scaled_object, request.scaled_object_namespace):
                log.warning("workload %s is claimed by ScaledObjects %s/%s and %s/%s with different metadata; "
                            "the latest call wins", key, old[0].scaled_object_namespace, old[0].scaled_object,
                            request.scaled_object_namespace, request.scaled_object)
            else:
                log.info("registered workload %s (ScaledObject %s/%s)", key, request.scaled_object_namespace,
                         request.scaled_object)
            for fn in self._listeners:
                fn()
        return changed

    def active(self) -> tuple[ScalerRequest, ...]:
        """Live entries sorted by workload key; expired ones are dropped."""
        now = self._clock()
        with self._lock:
            expired = [(k, r) for k, (r, seen) in self._entries.items() if now - seen > self._ttl_s]
            for k, _ in expired:
                del self._entries[k]
            live = tuple(r for _, (r, _) in sorted(self._entries.items()))
        for k, r in expired:
            log.info("forgot workload %s: no call from KEDA for %.0f s", k, self._ttl_s)
            self._forgotten(r, True)
        return live

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
