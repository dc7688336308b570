"""The aiohttp application: routes, status codes, timing, the thread the verbs run on. Every
decision is in the core, called by `service.py`."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from wattwise.plan_report import plan_report
from wattwise.scheduler import wire
from wattwise.scheduler.service import ExtenderService

log = logging.getLogger(__name__)

# The largest body kube-scheduler sends at 5,000 candidate nodes, with room: a full NodeList
# (nodeCacheCapable: false) of 5,000 Nodes at ~4.5 KB each (the recorded Nodes in
# tests/scheduler/data) is ~23 MB, plus a Pod (at most ~1.5 MB: etcd's object limit). Names mode
# needs ~1.3 MB at most (5,000 names of up to 253 characters). docs/extender.md "Request size".
DEFAULT_MAX_REQUEST_BYTES = 32 * 1024 * 1024


def _error(status: int, message: str) -> web.Response:
    return web.Response(status=status, body=wire.encode({"Error": message}), content_type="application/json")


# A body up to this size is answered on the event loop itself: names mode (nodeCacheCapable:
# true) sends a Pod and the candidates' names, a few KB at 100 names, answered in well under a
# millisecond from the placement memo. Handing each to the worker thread and back costs more than
# the answer: two wake-ups across threads, each a wait for the GIL while the KEDA door's thread
# and the refresher hold it, and calls queued behind one another on the one worker (the load
# benchmark: the extender's own p99 at 300 calls/s fell from <= 250 ms to <= 10 ms inline).
INLINE_MAX_BYTES = 64 * 1024


class _Dispatch:
    """Where a verb runs: on the event loop for a small body when the worker is idle, else on the
    worker (one thread). Either way one call at a time decides: the placement memo has one
    writer, and a small call never overtakes a large one in flight."""

    def __init__(self, worker: ThreadPoolExecutor):
        self.worker = worker
        self.on_worker = 0                  # calls handed to the worker and not back yet (loop only)

    async def run(self, call, body: bytes):
        if len(body) <= INLINE_MAX_BYTES and not self.on_worker:
            return _without_gc(call, body)
        self.on_worker += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.worker, _without_gc, call, body)
        finally:
            self.on_worker -= 1


def _verb_handler(service: ExtenderService, verb: str, call, max_request_bytes: int, dispatch: _Dispatch):
    """Read the body on the event loop; decode, decide and encode there for a small body, or on
    the worker thread for a large one (`_Dispatch`), so that health checks and /metrics never wait
    for a large request; count the metrics back on the loop."""
    metrics = service.metrics

    async def handle(request: web.Request) -> web.Response:
        started = time.perf_counter()
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            metrics.bad_requests.labels(verb).inc()
            metrics.observe_latency(verb, 413, time.perf_counter() - started)
            return _error(413, f"request body larger than {max_request_bytes} bytes (raise --max-request-bytes, "
                               f"or use nodeCacheCapable: true so the scheduler sends names only)")
        except ConnectionError:
            # the client went away before sending its whole body: nobody to answer, nothing wrong here
            log.info("%s: the client disconnected before sending the whole request body", verb)
            return web.Response(status=400)
        code = 200
        try:
            answer = await dispatch.run(call, body)
            answer.count(metrics, verb)
            response = web.Response(body=answer.body, content_type="application/json")
        except wire.BadRequest as e:
            code = 400
            metrics.bad_requests.labels(verb).inc()
            log.info("%s: bad request: %s", verb, e)
            response = _error(400, str(e))
        except Exception:  # noqa: BLE001 - a bug must answer, not hang the scheduler
            code = 500
            log.exception("%s: internal error", verb)
            response = _error(500, f"internal error in the WattWise extender's {verb}; see its log")
        metrics.observe_latency(verb, code, time.perf_counter() - started)
        return response

    return handle


def _without_gc(call, body: bytes):
    """`call(body)` with the cyclic garbage collector paused. A decoded request holds no reference
    cycles, yet the collector, triggered by the allocations of decoding and answering, walks the
    whole growing document again and again, holding the GIL: a 34 MB preemption body took 0.86 s
    to decode with it and 0.16 s without, and the event loop (health checks) waits meanwhile.
    What the call drops is freed by reference counting as it returns; the collector runs again
    between calls."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        return call(body)
    finally:
        if collecting:
            gc.enable()


def add_health_routes(app: web.Application, service: ExtenderService) -> None:
    async def healthz(_request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_request: web.Request) -> web.Response:
        """Ready once the node cache is current: the filter's TEE check needs the nodes, not a
        plan (without one, pods are checked and not scored). Not ready while no plan exists would
        take the extender out of its Service, and an ignorable extender out of the TEE check."""
        if not service.node_cache.ready:
            return web.Response(status=503, text=f"not ready: {service.node_cache.status()}\n")
        try:
            view = service.source.current()
            plan = "; degraded plan: " + "; ".join(view.degraded_reasons) if view.degraded else ""
        except Exception as e:  # noqa: BLE001 - said, not fatal: the filter works without a plan
            plan = f"; no plan yet ({e}): pods are checked, not scored"
        return web.Response(text=f"ready: {service.node_cache.status()}{plan}\n")

    async def metrics(_request: web.Request) -> web.Response:
        m = service.metrics
        m.flush()
        m.cache_nodes.set(len(service.node_cache.nodes()))
        age = service.node_cache.sync_age_s()
        m.cache_age_s.set(age if age != float("inf") else -1)
        return web.Response(body=generate_latest(m.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def plan(_request: web.Request) -> web.Response:
        try:
            view = service.source.current()
        except Exception as e:  # noqa: BLE001 - no plan yet: say why
            return _error(503, f"no plan yet: {wire.quote(e, 200)}")
        return web.Response(body=wire.encode(plan_report(view)), content_type="application/json")

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/plan", plan)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)


def build_app(service: ExtenderService, max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
              echo: bool = False) -> web.Application:
    """`echo` adds POST /echo (returns the body as sent): the benchmark's baseline on this stack."""
    app = web.Application(client_max_size=max_request_bytes)
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wattwise-extender-verbs")
    dispatch = _Dispatch(worker)

    async def stop_worker(_app: web.Application) -> None:
        worker.shutdown(wait=False, cancel_futures=True)

    app.on_cleanup.append(stop_worker)
    for verb in ("filter", "prioritize", "preempt"):
        app.router.add_post(f"/{verb}", _verb_handler(service, verb, getattr(service, verb), max_request_bytes,
                                                      dispatch))
    add_health_routes(app, service)
    if echo:
        async def echo_handler(request: web.Request) -> web.Response:
            return web.Response(body=await request.read(), content_type="application/json")

        app.router.add_post("/echo", echo_handler)
    return app


def build_health_app(service: ExtenderService) -> web.Application:
    """Plain-HTTP /healthz, /readyz, /metrics for probes when the main port demands client certs."""
    app = web.Application()
    add_health_routes(app, service)
    return app
