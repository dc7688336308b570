"""A stand-in for the Kubernetes API server, on 127.0.0.1 only: list and watch of the resources
WattWise reads, from recorded object JSON (`tests/data/kube/`, `tests/scheduler/data/nodes.json`).

For each resource (`RESOURCES`: nodes, pods of all namespaces, runtimeclasses, ScaledObjects,
Deployments, StatefulSets):
- GET without `watch` answers the current list (`...List`, items without apiVersion/kind for
  built-in kinds, as the API server sends them), honouring `fieldSelector` (`a.b=x`, `a.b!=x`),
  `labelSelector` (`k`, `k=v`, `!k`) and `limit`/`continue` pages.
- GET with `watch=true` plays the next scripted batch (`scripts`) and ends the stream; without a
  script it replays the events after the request's resourceVersion (410 Gone, as an ERROR event,
  when that version was compacted away: `compact`), then streams what `emit` adds, until
  timeoutSeconds, `close_watches`, or the server stops. A watch with a field selector sees an
  object leaving the selection as DELETED, as the API server shows it.
- `served=False`: 404 with the API server's "404 page not found" (a CRD that is not installed);
  `status=403`: every request forbidden, with the Status the API server sends; `watch_status=403`:
  watches alone forbidden (a ClusterRole granting `list` without `watch`).
- every request is recorded in `seen`; `lists(name)` counts the lists (first pages).
- `emit` sets `metadata.generation` as the API server does: 1 for a new object, one more when the
  spec changed, unchanged for a status or metadata update.
PATCH /api/v1/namespaces/{ns}/pods/{name} is recorded in `patches`; a JSON merge patch is applied
to the pod (a MODIFIED event follows) and the pod returned, or, with `patch_status` set, a Status of
that code is returned (e.g. 403 Forbidden, as for a ServiceAccount without `patch` on pods).
POST /api/v1/namespaces/{ns}/events is recorded in `posted_events` (the body as sent) and answered
201 with the Event as created (uid, resourceVersion, creationTimestamp added), after the checks
the API server makes of a core/v1 Event without eventTime (its namespace is the path's and its
involvedObject's: else 422; a name taken: 409); with `event_status` set, a Status of that code
instead (e.g. 403, as for a ServiceAccount without `create` on events).
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

DATA = Path(__file__).parent / "data"


@dataclass
class Seen:
    watch: bool
    resource_version: str | None
    field_selector: str = ""
    label_selector: str = ""
    limit: str | None = None
    continue_token: str | None = None


@dataclass
class PatchSeen:
    namespace: str
    name: str
    content_type: str
    body: dict


@dataclass
class Resource:
    name: str             # the plural
    path: str             # the collection, all namespaces
    api_version: str
    kind: str
    builtin: bool = True  # list items without apiVersion/kind
    items: list[dict] = field(default_factory=list)
    resource_version: str = "1"
    scripts: list[list[dict]] = field(default_factory=list)
    served: bool = True
    status: int | None = None
    watch_status: int | None = None
    seen: list[Seen] = field(default_factory=list)
    events: list[tuple[int, str, dict, dict | None]] = field(default_factory=list)  # (rv, type, obj, old)
    compacted: int = 0    # watches from an older version get 410 Gone
    watchers: list[asyncio.Queue] = field(default_factory=list)


RESOURCES = (
    ("nodes", "/api/v1/nodes", "v1", "Node", True),
    ("pods", "/api/v1/pods", "v1", "Pod", True),
    ("runtimeclasses", "/apis/node.k8s.io/v1/runtimeclasses", "node.k8s.io/v1", "RuntimeClass", True),
    ("scaledobjects", "/apis/keda.sh/v1alpha1/scaledobjects", "keda.sh/v1alpha1", "ScaledObject", False),
    ("deployments", "/apis/apps/v1/deployments", "apps/v1", "Deployment", True),
    ("statefulsets", "/apis/apps/v1/statefulsets", "apps/v1", "StatefulSet", True),
)


def recorded_list(name: str) -> dict:
    """A recorded list response: nodes from the extender's tests, the rest from tests/data/kube."""
    path = DATA.parent / "scheduler" / "data" / "nodes.json" if name == "nodes" else DATA / "kube" / f"{name}.json"
    return json.loads(path.read_text())


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def _path_value(obj: dict, dotted: str):
    value = obj
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else str(value)


def matches_fields(obj: dict, selector: str) -> bool:
    for term in filter(None, (t.strip() for t in (selector or "").split(","))):
        if "!=" in term:
            path, value = term.split("!=", 1)
            if _path_value(obj, path) == value:
                return False
        else:
            path, value = term.replace("==", "=").split("=", 1)
            if _path_value(obj, path) != value:
                return False
    return True


def matches_labels(obj: dict, selector: str) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for term in filter(None, (t.strip() for t in (selector or "").split(","))):
        if term.startswith("!"):
            if term[1:] in labels:
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key) != value:
                return False
        elif term not in labels:
            return False
    return True


def _key(obj: dict) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return meta.get("namespace") or "", meta.get("name") or ""


def _status_body(code: int, message: str, reason: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


class FakeKubeApi:
    def __init__(self, node_list: dict | None = None, watch_scripts: list[list[dict]] | None = None,
                 pod_list: dict | None = None, lists: dict[str, dict] | None = None):
        """`node_list`, `pod_list`, `lists` (plural -> list response): what each resource starts
        with (default: empty); `watch_scripts`: the nodes' scripted watch streams."""
        self.resources: dict[str, Resource] = {}
        given = dict(lists or {})
        if node_list is not None:
            given["nodes"] = node_list
        if pod_list is not None:
            given["pods"] = pod_list
        for name, path, api_version, kind, builtin in RESOURCES:
            r = Resource(name, path, api_version, kind, builtin)
            if name in given:
                r.items = [copy.deepcopy(o) for o in given[name].get("items") or ()]
                r.resource_version = str((given[name].get("metadata") or {}).get("resourceVersion") or "1")
            self.resources[name] = r
        self.resources["nodes"].scripts = list(watch_scripts or [])
        self.patches: list[PatchSeen] = []
        self.patch_status: int | None = None
        self.posted_events: list[dict] = []
        self.event_status: int | None = None
        self.url = ""
        self._rv = max([int(r.resource_version) for r in self.resources.values()] + [1])

    @classmethod
    def recorded(cls) -> "FakeKubeApi":
        """Every resource from its recorded list."""
        return cls(lists={name: recorded_list(name) for name, *_ in RESOURCES})

    # -- the shapes the extender's tests know -----------------------------------------------------
    @property
    def seen(self) -> list[Seen]:
        return self.resources["nodes"].seen

    @property
    def pod_selectors(self) -> list[str]:
        return [s.label_selector for s in self.resources["pods"].seen]

    @property
    def pod_list(self) -> dict:
        return self._list_doc(self.resources["pods"], self.resources["pods"].items)

    def set_nodes(self, node_list: dict) -> None:
        self.set_items("nodes", node_list["items"], node_list["metadata"]["resourceVersion"])

    # -- controlling it (any thread) ----------------------------------------------------------------
    def lists(self, name: str) -> int:
        """List calls of a resource so far (a paged list counts once)."""
        return sum(1 for s in self.resources[name].seen if not s.watch and not s.continue_token)

    def set_items(self, name: str, items: list[dict], resource_version: str) -> None:
        """Replace what a resource holds, without events (what a watcher that missed them relists)."""
        r = self.resources[name]
        before = {_key(o): o for o in r.items}
        r.items = [copy.deepcopy(o) for o in items]
        for o in r.items:
            _set_generation(o, before.get(_key(o)))
        r.resource_version = str(resource_version)
        self._rv = max(self._rv, int(resource_version))

    def emit(self, name: str, kind: str, obj: dict) -> dict:
        """Change one object as the API server would (ADDED, MODIFIED, DELETED): a new
        resourceVersion, the list updated, the event to every open watch. Returns the object."""
        return self._call(self._emit, name, kind, copy.deepcopy(obj))

    def compact(self, name: str) -> None:
        """Forget the events so far: a watch from an older version gets 410 Gone."""
        def run():
            r = self.resources[name]
            r.compacted = self._rv
            r.events.clear()
        self._call(run)

    def close_watches(self, name: str) -> None:
        """End every open watch stream of the resource (the API server does so now and then)."""
        def run():
            for q in self.resources[name].watchers:
                q.put_nowait(None)
        self._call(run)

    def open_watches(self, name: str) -> int:
        return len(self.resources[name].watchers)

    # -- serving ------------------------------------------------------------------------------------
    def start(self) -> "FakeKubeApi":
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def setup():
            self._stop = asyncio.Event()
            app = web.Application()
            for r in self.resources.values():
                app.router.add_get(r.path, self._handler(r))
            app.router.add_patch("/api/v1/namespaces/{namespace}/pods/{name}", self._patch_pod)
            app.router.add_post("/api/v1/namespaces/{namespace}/events", self._post_event)
            self._runner = web.AppRunner(app, shutdown_timeout=0.5)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

        def run():
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(setup())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        async def shutdown():
            self._stop.set()
            for r in self.resources.values():
                for q in r.watchers:
                    q.put_nowait(None)
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _call(self, fn, *args):
        """Run on the server's loop (its state is the loop's), or directly before it starts."""
        if getattr(self, "_loop", None) is None or not self._loop.is_running():
            return fn(*args)

        async def run():
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    def _emit(self, name: str, kind: str, obj: dict) -> dict:
        r = self.resources[name]
        self._rv += 1
        obj.setdefault("metadata", {})["resourceVersion"] = str(self._rv)
        obj["apiVersion"], obj["kind"] = r.api_version, r.kind
        key = _key(obj)
        index = next((i for i, o in enumerate(r.items) if _key(o) == key), None)
        old = copy.deepcopy(r.items[index]) if index is not None else None
        if kind != "DELETED":
            _set_generation(obj, old)
        if kind == "DELETED":
            if index is not None:
                r.items.pop(index)
        elif index is not None:
            r.items[index] = copy.deepcopy(obj)
        else:
            r.items.append(copy.deepcopy(obj))
        r.resource_version = str(self._rv)
        r.events.append((self._rv, kind, obj, old))
        for q in r.watchers:
            q.put_nowait((self._rv, kind, obj, old))
        return copy.deepcopy(obj)

    def _list_doc(self, r: Resource, items: list[dict], meta: dict | None = None) -> dict:
        out = []
        for o in items:
            o = copy.deepcopy(o)
            if r.builtin:
                o.pop("apiVersion", None)
                o.pop("kind", None)
            out.append(o)
        return {"apiVersion": r.api_version, "kind": f"{r.kind}List",
                "metadata": {"resourceVersion": r.resource_version, **(meta or {})}, "items": out}

    def _handler(self, r: Resource):
        async def handle(request: web.Request) -> web.StreamResponse:
            q = request.query
            watch = q.get("watch") in ("1", "true", "True")
            r.seen.append(Seen(watch, q.get("resourceVersion"), q.get("fieldSelector", ""), q.get("labelSelector", ""),
                               q.get("limit"), q.get("continue")))
            if not r.served:
                return web.Response(status=404, text="404 page not found\n")
            status = r.watch_status if watch and r.watch_status is not None else r.status
            if status is not None:
                group = r.api_version.rpartition("/")[0]
                what = f"{r.name}.{group}" if group else r.name
                return web.json_response(_status_body(
                    status, f'{what} is forbidden: User "system:serviceaccount:wattwise-system:wattwise" cannot '
                    f'{"watch" if watch else "list"} resource "{r.name}" in API group "{group}" at the cluster scope',
                    "Forbidden"), status=status)
            selected = [o for o in r.items if matches_fields(o, q.get("fieldSelector", ""))
                        and matches_labels(o, q.get("labelSelector", ""))]
            if not watch:
                start = int(q.get("continue") or 0)
                limit = int(q.get("limit") or 0) or len(selected) or 1
                page, rest = selected[start:start + limit], selected[start + limit:]
                meta = {"continue": str(start + limit), "remainingItemCount": len(rest)} if rest else {}
                return web.json_response(self._list_doc(r, page, meta))
            return await self._watch(r, request)
        return handle

    async def _watch(self, r: Resource, request: web.Request) -> web.StreamResponse:
        q = request.query
        fields, labels = q.get("fieldSelector", ""), q.get("labelSelector", "")
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)

        async def send(event: dict) -> None:
            await resp.write(json.dumps(event).encode() + b"\n")

        if r.scripts:
            for event in r.scripts.pop(0):
                await send(event)
            await resp.write_eof()
            return resp
        since = int(q.get("resourceVersion") or 0)
        if since and since < r.compacted:
            await send({"type": "ERROR", "object": _status_body(
                410, f"too old resource version: {since} ({r.compacted})", "Expired")})
            await resp.write_eof()
            return resp
        queue: asyncio.Queue = asyncio.Queue()
        for recorded in r.events:
            if recorded[0] > since:
                queue.put_nowait(recorded)
        r.watchers.append(queue)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + float(q.get("timeoutSeconds", "30"))
        try:
            while not self._stop.is_set():
                try:
                    item = await asyncio.wait_for(queue.get(), max(0.0, deadline - loop.time()))
                except asyncio.TimeoutError:
                    break
                if item is None:
                    break
                _, kind, obj, old = item
                seen_kind = _as_selected(kind, obj, old, fields, labels)
                if seen_kind is not None:
                    await send({"type": seen_kind, "object": obj})
        except ConnectionResetError:
            pass            # the client went away (a watcher stopping)
        finally:
            r.watchers.remove(queue)
        try:
            await resp.write_eof()
        except ConnectionResetError:
            pass
        return resp

    async def _patch_pod(self, request: web.Request) -> web.Response:
        ns, name = request.match_info["namespace"], request.match_info["name"]
        body = await request.json()
        self.patches.append(PatchSeen(ns, name, request.headers.get("Content-Type", ""), body))
        if self.patch_status is not None:
            return _status(self.patch_status, f'pods "{name}" is forbidden: User '
                           '"system:serviceaccount:wattwise-system:wattwise-extender" cannot patch resource '
                           f'"pods" in API group "" in the namespace "{ns}"' if self.patch_status == 403 else "error")
        for pod in self.resources["pods"].items:
            if _key(pod) == (ns, name):
                return web.json_response(self._emit("pods", "MODIFIED", merge_patch(pod, body)))
        return _status(404, f'pods "{name}" not found')

    async def _post_event(self, request: web.Request) -> web.Response:
        ns = request.match_info["namespace"]
        body = await request.json()
        self.posted_events.append(body)
        if self.event_status is not None:
            return _status(self.event_status, 'events is forbidden: User '
                           '"system:serviceaccount:wattwise-system:wattwise-scaler" cannot create resource "events" '
                           f'in API group "" in the namespace "{ns}"' if self.event_status == 403 else "error")
        meta = body.get("metadata") or {}
        if meta.get("namespace", ns) != ns or (body.get("involvedObject") or {}).get("namespace") != ns:
            return _status(422, f'Event "{meta.get("name")}" is invalid: involvedObject.namespace: '
                                'does not match event.namespace')
        name = meta.get("name") or ""
        if not name or sum(1 for e in self.posted_events if (e.get("metadata") or {}).get("name") == name) > 1:
            return _status(409 if name else 422, f'events "{name}" already exists' if name else "name is required")
        self._rv += 1
        created = {**copy.deepcopy(body), "metadata": {**meta, "namespace": ns, "uid": f"uid-event-{self._rv}",
                                                       "resourceVersion": str(self._rv),
                                                       "creationTimestamp": "2025-06-11T14:10:00Z"}}
        return web.json_response(created, status=201)


def _as_selected(kind: str, obj: dict, old: dict | None, fields: str, labels: str) -> str | None:
    """The event as a watch with these selectors sees it: an object entering the selection is
    ADDED, one leaving it DELETED, one outside it nothing."""
    now = kind != "DELETED" and matches_fields(obj, fields) and matches_labels(obj, labels)
    before = old is not None and matches_fields(old, fields) and matches_labels(old, labels)
    if kind == "DELETED":
        return "DELETED" if before else None
    if now and before:
        return "MODIFIED"
    if now:
        return "ADDED"
    return "DELETED" if before else None


_REASONS = {403: "Forbidden", 404: "NotFound", 409: "Conflict", 422: "Invalid", 500: "InternalError"}


def _set_generation(obj: dict, old: dict | None) -> None:
    """`metadata.generation` as the API server keeps it: 1 for a new object with a spec, one more
    when the spec changed, as it was for a status or metadata update."""
    if "spec" not in obj:
        return
    meta = obj.setdefault("metadata", {})
    was = ((old or {}).get("metadata") or {}).get("generation")
    if old is None:
        meta.setdefault("generation", 1)
    elif obj.get("spec") != old.get("spec"):
        meta["generation"] = int(was or 1) + 1
    elif was is not None:
        meta["generation"] = was


def _status(code: int, message: str) -> web.Response:
    """An error as the API server sends it: a v1 Status object."""
    return web.json_response(_status_body(code, message, _REASONS.get(code, "Unknown")), status=code)


def kube_cluster(api: FakeKubeApi, **kwargs):
    """A KubeCluster against the fake (not started), retrying fast and never resyncing on its own."""
    from kubernetes import client

    from wattwise.kube.cluster import KubeCluster

    kwargs = {"resync_s": 3600, "watch_timeout_s": 30, "retry_s": 0.05, "max_retry_s": 0.1, **kwargs}
    return KubeCluster(client.ApiClient(client.Configuration(host=api.url)), **kwargs)


def wait_until(predicate, timeout_s: float = 15.0) -> bool:
    """Poll for an asynchronous outcome; the test fails on the assertion after it, not on time."""
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()
