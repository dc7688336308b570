"""The aiohttp application: routes, status codes, timing. Every decision is in `service.py`."""

from __future__ import annotations

import logging
import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from wattwise.scheduler import wire
from wattwise.scheduler.service import ExtenderService

log = logging.getLogger(__name__)

DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024  # a full NodeList of ~40,000 nodes at ~1.5 KB each


def _error(status: int, message: str) -> web.Response:
    return web.Response(status=status, body=wire.encode({"Error": message}), content_type="application/json")


def _verb_handler(service: ExtenderService, verb: str, call, max_request_bytes: int):
    metrics = service.metrics

    async def handle(request: web.Request) -> web.Response:
        started = time.perf_counter()
        code = 200
        try:
            body = await request.read()
            response = web.Response(body=call(body), content_type="application/json")
        except wire.BadRequest as e:
            code = 400
            metrics.bad_requests.labels(verb).inc()
            log.info("%s: bad request: %s", verb, e)
            response = _error(400, str(e))
        except web.HTTPRequestEntityTooLarge:
            code = 413
            metrics.bad_requests.labels(verb).inc()
            response = _error(413, f"request body larger than {max_request_bytes} bytes (raise --max-request-bytes, "
                                   f"or use nodeCacheCapable: true so the scheduler sends names only)")
        except Exception:  # noqa: BLE001 - a bug must answer, not hang the scheduler
            code = 500
            log.exception("%s: internal error", verb)
            response = _error(500, f"internal error in the WattWise extender's {verb}; see its log")
        metrics.observe_latency(verb, code, time.perf_counter() - started)
        return response

    return handle


def add_health_routes(app: web.Application, service: ExtenderService) -> None:
    async def healthz(_request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_request: web.Request) -> web.Response:
        problems = []
        if not service.node_cache.ready:
            problems.append(service.node_cache.status())
        try:
            view = service.source.current()
            if view.degraded:
                log.debug("plan view degraded: %s", "; ".join(view.degraded_reasons))
        except Exception as e:  # noqa: BLE001 - report why we are not ready
            problems.append(f"no plan: {e}")
        if problems:
            return web.Response(status=503, text="not ready: " + "; ".join(problems) + "\n")
        return web.Response(text=f"ready: {service.node_cache.status()}\n")

    async def metrics(_request: web.Request) -> web.Response:
        m = service.metrics
        m.flush()
        m.cache_nodes.set(len(service.node_cache.nodes()))
        age = service.node_cache.sync_age_s()
        m.cache_age_s.set(age if age != float("inf") else -1)
        return web.Response(body=generate_latest(m.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)


def build_app(service: ExtenderService, max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
              echo: bool = False) -> web.Application:
    """`echo` adds POST /echo (returns the body as sent): the benchmark's baseline on this stack."""
    app = web.Application(client_max_size=max_request_bytes)
    app.router.add_post("/filter", _verb_handler(service, "filter", service.filter, max_request_bytes))
    app.router.add_post("/prioritize", _verb_handler(service, "prioritize", service.prioritize, max_request_bytes))
    app.router.add_post("/preempt", _verb_handler(service, "preempt", service.preempt, max_request_bytes))
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
