"""A stand-in for the Kubernetes API server's node and pod endpoints, on 127.0.0.1 only.

GET /api/v1/nodes answers the current NodeList (recorded JSON); with ?watch=1 it streams the next
scripted batch of watch events (one JSON object per line, as the API server does) and then ends
the stream, or holds it open when no script is left, like a quiet cluster.
GET /api/v1/pods answers `pod_list` (its watch stays quiet). PATCH
/api/v1/namespaces/{ns}/pods/{name} is recorded in `patches`; a JSON merge patch is applied to
the pod in `pod_list` and the pod returned, or, with `patch_status` set, a Status of that code is
returned (e.g. 403 Forbidden, as for a ServiceAccount without `patch` on pods).
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Seen:
    watch: bool
    resource_version: str | None


@dataclass
class PatchSeen:
    namespace: str
    name: str
    content_type: str
    body: dict


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


@dataclass
class FakeKubeApi:
    node_list: dict
    watch_scripts: list[list[dict]] = field(default_factory=list)
    pod_list: dict = field(default_factory=lambda: {"kind": "PodList", "apiVersion": "v1",
                                                    "metadata": {"resourceVersion": "1"}, "items": []})
    pod_selectors: list[str] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    patches: list[PatchSeen] = field(default_factory=list)
    patch_status: int | None = None
    url: str = ""

    def start(self) -> "FakeKubeApi":
        self._loop = asyncio.new_event_loop()
        self._stop = None
        ready = threading.Event()

        async def setup():
            self._stop = asyncio.Event()
            app = web.Application()
            app.router.add_get("/api/v1/nodes", self._nodes)
            app.router.add_get("/api/v1/pods", self._pods)
            app.router.add_patch("/api/v1/namespaces/{namespace}/pods/{name}", self._patch_pod)
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
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def set_nodes(self, node_list: dict) -> None:
        self.node_list = node_list

    async def _pods(self, request: web.Request) -> web.StreamResponse:
        """Pods: the list, and a watch that stays quiet."""
        self.pod_selectors.append(request.query.get("labelSelector", ""))
        if request.query.get("watch") not in ("1", "true", "True"):
            return web.json_response(copy.deepcopy(self.pod_list))
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        await self._quiet_until_timeout(request)
        await resp.write_eof()
        return resp

    async def _patch_pod(self, request: web.Request) -> web.Response:
        ns, name = request.match_info["namespace"], request.match_info["name"]
        body = await request.json()
        self.patches.append(PatchSeen(ns, name, request.headers.get("Content-Type", ""), body))
        if self.patch_status is not None:
            return _status(self.patch_status, f'pods "{name}" is forbidden: User '
                           '"system:serviceaccount:wattwise-system:wattwise-extender" cannot patch resource '
                           f'"pods" in API group "" in the namespace "{ns}"' if self.patch_status == 403 else "error")
        for i, pod in enumerate(self.pod_list["items"]):
            meta = pod.get("metadata") or {}
            if meta.get("namespace") == ns and meta.get("name") == name:
                new = merge_patch(pod, body)
                new["metadata"]["resourceVersion"] = str(int(meta.get("resourceVersion") or 0) + 1)
                self.pod_list["items"][i] = new
                return web.json_response(copy.deepcopy(new))
        return _status(404, f'pods "{name}" not found')

    async def _nodes(self, request: web.Request) -> web.StreamResponse:
        watch = request.query.get("watch") in ("1", "true", "True")
        self.seen.append(Seen(watch, request.query.get("resourceVersion")))
        if not watch:
            return web.json_response(copy.deepcopy(self.node_list))
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        if self.watch_scripts:
            for event in self.watch_scripts.pop(0):
                await resp.write(json.dumps(event).encode() + b"\n")
        else:
            await self._quiet_until_timeout(request)
        await resp.write_eof()
        return resp

    async def _quiet_until_timeout(self, request: web.Request) -> None:
        """A watch with nothing to say: open until its timeoutSeconds, or until the server stops."""
        try:
            await asyncio.wait_for(self._stop.wait(), float(request.query.get("timeoutSeconds", "30")))
        except asyncio.TimeoutError:
            pass


_REASONS = {403: "Forbidden", 404: "NotFound", 409: "Conflict", 422: "Invalid", 500: "InternalError"}


def _status(code: int, message: str) -> web.Response:
    """An error as the API server sends it: a v1 Status object."""
    return web.json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                              "message": message, "reason": _REASONS.get(code, "Unknown"), "code": code},
                             status=code)
