"""Kubernetes Events on a ScaledObject when the replicas planned for it change, so
`kubectl describe scaledobject` and `kubectl get events` say what WattWise decided and why.

`ReplicaEvents` is a refresher listener (it runs on the refresher thread and only compares and
enqueues): for each ScaledObject read from the cluster whose workload's planned replicas differ
from what it last reported (and for every one after the first plan, or once it is first
planned), one core/v1 Event on that ScaledObject (its uid from the scaled-objects store):
- `ReplicasPlanned` (Normal): "N replicas planned (was M): <the plan's reasons>";
- `DemandUnmet` (Warning): the plan cannot meet the workload's demand (`WorkloadPlan.unmet_fps`);
- `ReplicasHeld` (Warning): the replicas are held because its demand telemetry is untrustworthy
  (`WorkloadPlan.held`; with `no_trusted_demand` no count is planned at all and KEDA keeps its own).
The message is clipped to 1,024 bytes (the API's limit for an Event's note). Every process that
plans the cluster (scaler and extender replicas) reports the same change under the same Event
name (the ScaledObject's uid, the plan time, the counts before and after), so the API server
keeps one and answers the others 409 AlreadyExists, counted in `already` and not logged.

`EventPoster` posts them on its own thread: at most `rate_per_s` a second with bursts of `burst`,
at most `queue_size` waiting (beyond that an Event is dropped and counted, `dropped`); a failed
POST (403 without RBAC `create` on events, the API server down) is counted, logged once per kind
of failure, and never retried, blocking or failing planning.
"""

from __future__ import annotations

import collections
import datetime
import hashlib
import logging
import socket
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Protocol

from wattwise.kube.list_watch import describe
from wattwise.kube.store import ObjectStore
from wattwise.models.plan import WorkloadPlan
from wattwise.models.snapshot import Objective
from wattwise.models.trigger_metadata import ScalerRequest
from wattwise.models.workload_build import objective_of
from wattwise.runtime import PlanView

log = logging.getLogger(__name__)

COMPONENT = "wattwise"                      # source.component and reportingComponent
SCALED_OBJECT_API_VERSION = "keda.sh/v1alpha1"
MESSAGE_BYTES = 1024                        # the API server's limit for an Event's note
INSTANCE_CHARS = 128                        # ... and for reportingInstance
NAME_CHARS = 253                            # an object name (DNS subdomain)

Post = Callable[[str, dict], None]          # (namespace, Event JSON); raises on failure


@dataclass(frozen=True)
class ReplicaNote:
    """What one Event says about one ScaledObject."""

    namespace: str
    name: str
    type: str        # Normal or Warning
    reason: str      # ReplicasPlanned, DemandUnmet or ReplicasHeld
    message: str


def answered_replicas(wp: WorkloadPlan) -> int | None:
    """The replicas KEDA is told (None: no trustworthy demand ever, KEDA keeps its own count)."""
    return None if wp.no_trusted_demand else wp.replicas


def replica_note(namespace: str, name: str, wp: WorkloadPlan, before: int | None, first: bool) -> ReplicaNote:
    """The Event for a ScaledObject whose workload is now planned as `wp` (`before`: the replicas
    reported last, unless `first`)."""
    replicas = answered_replicas(wp)
    was = "" if first else f" (was {'not planned' if before is None else before})"
    reasons = "; ".join(wp.reasons) or "no reason given"
    if replicas is None:
        kind, reason = "Warning", "ReplicasHeld"
        head = "no replica count planned: no trustworthy demand yet, so KEDA keeps the current count"
    elif wp.held:
        kind, reason = "Warning", "ReplicasHeld"
        head = f"{replicas} replicas held{was}: demand telemetry is untrustworthy"
    elif not wp.feasible:
        kind, reason = "Warning", "DemandUnmet"
        head = f"{replicas} replicas planned{was}; {wp.unmet_fps:.1f} of {wp.demand_fps:.1f} fps cannot be met"
    else:
        kind, reason = "Normal", "ReplicasPlanned"
        head = f"{replicas} replicas planned{was}"
    return ReplicaNote(namespace, name, kind, reason, clip_bytes(f"{head}: {reasons}", MESSAGE_BYTES))


def clip_bytes(text: str, limit: int) -> str:
    """`text` in at most `limit` UTF-8 bytes (the API server counts bytes), "..." marking a cut."""
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[:limit - 3].decode(errors="ignore") + "..."


def event_name(name: str, *change: object) -> str:
    """`<object>.<16 hex digits>`, the digits from what identifies the change (the same in every
    process that plans it), as client-go's `<object>.<hex>` names look."""
    suffix = "." + hashlib.sha256(repr(change).encode()).hexdigest()[:16]
    return name[:NAME_CHARS - len(suffix)] + suffix


def event_body(note: ReplicaNote, scaled_object: Mapping, event: str, now_s: float, instance: str) -> dict:
    """A core/v1 Event named `event` (the classic shape kubectl shows: first/lastTimestamp,
    count, source) on the ScaledObject as stored, at wall-clock time `now_s`."""
    meta = scaled_object.get("metadata") or {}
    stamp = datetime.datetime.fromtimestamp(now_s, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": event, "namespace": note.namespace},
        "involvedObject": {"apiVersion": scaled_object.get("apiVersion") or SCALED_OBJECT_API_VERSION,
                           "kind": "ScaledObject", "name": note.name, "namespace": note.namespace,
                           "uid": str(meta.get("uid") or ""), "resourceVersion": str(meta.get("resourceVersion") or "")},
        "reason": note.reason, "message": note.message, "type": note.type,
        "source": {"component": COMPONENT},
        "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
        "reportingComponent": COMPONENT, "reportingInstance": instance[:INSTANCE_CHARS],
    }


def kube_event_post(api_client, timeout_s: float = 10.0) -> Post:
    """POST an Event with the kubernetes client (create in the Event's namespace)."""
    from kubernetes import client

    api = client.CoreV1Api(api_client)

    def post(namespace: str, body: dict) -> None:
        resp = api.create_namespaced_event(namespace, body, _preload_content=False, _request_timeout=(5, timeout_s))
        resp.release_conn()

    return post


_HINTS = {403: "grant the service account `create` on events (core API group) in the ScaledObjects' namespaces; "
               "until then no Events are posted"}


class EventPoster:
    """Posts Events off the caller's thread, paced by a token bucket; never blocks `submit`."""

    def __init__(self, post: Post, *, rate_per_s: float = 2.0, burst: int = 20, queue_size: int = 200,
                 clock: Callable[[], float] = time.monotonic):
        if rate_per_s <= 0 or burst < 1 or queue_size < 1:
            raise ValueError(f"need rate_per_s > 0, burst >= 1, queue_size >= 1; got {rate_per_s!r}, {burst!r}, "
                             f"{queue_size!r}")
        self._post = post
        self._rate_per_s, self._burst = rate_per_s, float(burst)
        self._queue_size = queue_size
        self._clock = clock
        self._tokens = float(burst)
        self._refilled_s = clock()
        self._queue: collections.deque[tuple[str, dict]] = collections.deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._logged: set[tuple] = set()
        self.posted = 0
        self.already = 0          # 409: another WattWise process posted the same Event
        self.failed = 0
        self.dropped = 0
        self.last_error = ""

    def start(self) -> "EventPoster":
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="wattwise-events", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout_s: float = 2.0) -> None:
        """Stop posting; Events still waiting are discarded (they are best-effort by nature)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def submit(self, namespace: str, body: dict) -> bool:
        """Queue an Event; False (and counted in `dropped`) when `queue_size` are waiting already."""
        with self._cond:
            if len(self._queue) >= self._queue_size:
                self.dropped += 1
                if self.dropped == 1:
                    log.warning("Kubernetes Events: %d already waiting to be posted, dropping more (counted)",
                                self._queue_size)
                return False
            self._queue.append((namespace, body))
            self._cond.notify()
        return True

    def pending(self) -> int:
        return len(self._queue)

    def _take_token(self) -> float:
        """0 when a token was taken, else the seconds until one is there."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._refilled_s) * self._rate_per_s)
        self._refilled_s = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self._rate_per_s

    def _loop(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                while not self._queue and not self._stop.is_set():
                    self._cond.wait()
                if self._stop.is_set():
                    return
                wait_s = self._take_token()
                item = self._queue.popleft() if wait_s == 0.0 else None
            if item is None:
                self._stop.wait(wait_s)
                continue
            self.post_now(*item)

    def post_now(self, namespace: str, body: dict) -> bool:
        """Post on this thread (the poster thread's step; tests call it directly)."""
        try:
            self._post(namespace, body)
        except Exception as e:  # noqa: BLE001 - an Event is best-effort: counted, logged once per kind
            status = getattr(e, "status", None)
            if status == 409:
                self.already += 1
                log.debug("Event %s in %s: posted already by another WattWise process",
                          (body.get("metadata") or {}).get("name"), namespace)
                return True
            self.failed += 1
            self.last_error = describe(e, _HINTS.get(status, "") if isinstance(status, int) else "")
            kind = (status, namespace) if status == 403 else (status if isinstance(status, int) else type(e).__name__,)
            if kind not in self._logged:
                self._logged.add(kind)
                log.warning("cannot post a Kubernetes Event in namespace %s: %s", namespace, self.last_error)
            else:
                log.debug("cannot post a Kubernetes Event in namespace %s: %s", namespace, self.last_error)
            return False
        self.posted += 1
        return True


class PlanState(Protocol):
    """What `ReplicaEvents` reads of the refresher's published state."""

    @property
    def default_objective(self) -> Objective: ...

    @property
    def now_s(self) -> float: ...   # the plan time (the same in every process planning this cluster)

    def view_for(self, objective: Objective | None) -> PlanView: ...


class ReplicaEvents:
    """A refresher listener: `fn(state)` after every swap; Events for the ScaledObjects whose
    workload's answered replicas changed (see the module's doc)."""

    def __init__(self, scaled_objects: ObjectStore, requests: Callable[[], Iterable[ScalerRequest]],
                 poster: EventPoster, *, instance: str | None = None, clock: Callable[[], float] = time.time):
        """`requests`: the cluster's ScaledObjects as the refresher plans them (workload key ->
        ScaledObject); `instance`: reportingInstance (default: the host name, a pod's name)."""
        self._scaled_objects = scaled_objects
        self._requests = requests
        self.poster = poster
        self._instance = instance or socket.gethostname()
        self._clock = clock
        self._reported: dict[tuple[str, str], tuple[str, int | None]] = {}   # ScaledObject -> (uid, replicas)

    def __call__(self, state: PlanState) -> None:
        seen = set()
        for r in self._requests():
            key = (r.scaled_object_namespace, r.scaled_object)
            so = self._scaled_objects.get(*key)
            if so is None:
                continue          # deleted since it was read
            seen.add(key)
            wp = state.view_for(objective_of(r, state.default_objective)).plan.workloads.get(r.workload_key)
            if wp is None:
                continue          # not planned yet: the next plan includes it
            uid = str((so.get("metadata") or {}).get("uid") or "")
            replicas = answered_replicas(wp)
            last = self._reported.get(key)
            if last is not None and last == (uid, replicas):
                continue
            first = last is None or last[0] != uid          # a ScaledObject made again is a new one
            before = None if first or last is None else last[1]
            note = replica_note(key[0], key[1], wp, before, first)
            name = event_name(key[1], uid, state.now_s, "first" if first else before, replicas, note.reason)
            self.poster.submit(key[0], event_body(note, so, name, self._clock(), self._instance))
            self._reported[key] = (uid, replicas)
        for key in set(self._reported) - seen:
            del self._reported[key]
