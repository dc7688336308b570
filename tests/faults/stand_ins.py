"""Small HTTP servers on 127.0.0.1 (aiohttp, each on its own thread and event loop) whose answers a
fault test sets: where the fault is the HTTP answer itself.

- `PrometheusStandIn`: Prometheus's HTTP API for instant queries (`/api/v1/query`, GET or POST),
  answering every query with one sample of `value` at the query's `time`, as Prometheus would for
  `sum(...)`; `mode` makes it slow (`delay_s` before answering), answer errors (`status`, with
  Prometheus's error JSON) or garbage (`garbage`: the body as given, 200).
- `CarbonStandIn`: Electricity Maps' `/v3/carbon-intensity/latest?zone=` (the shape
  `telemetry/carbon/electricitymaps.py` reads), with the same modes.
- `StreamsExporter`: a scrape target exporting `wattwise_active_streams` (a gauge the test sets),
  for a real Prometheus that must keep answering a live series.
"""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import datetime, timezone

from aiohttp import web

OK, SLOW, ERROR, GARBAGE = "ok", "slow", "error", "garbage"


class StandIn:
    """An aiohttp app on 127.0.0.1 (`port` 0: a free one) in a thread; `requests` counts calls."""

    def __init__(self, port: int = 0):
        self.port = port
        self.mode = OK
        self.delay_s = 10.0
        self.status = 503
        self.garbage = b"<html>502 Bad Gateway</html>"
        self.requests = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def start(self) -> StandIn:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        async def setup():
            app = web.Application()
            self.routes(app)
            self._runner = web.AppRunner(app, shutdown_timeout=0.2)
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
            self.port = self._runner.addresses[0][1]

        def run():
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(setup())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True, name=type(self).__name__)
        self._thread.start()
        assert ready.wait(10), f"{type(self).__name__} did not start"
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        async def shutdown():
            await self._runner.cleanup()
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in pending:            # answers still waiting out a `delay_s`
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def faulty(self) -> web.Response | None:
        """The fault's answer, or None to answer normally (after `delay_s` when slow)."""
        self.requests += 1
        if self.mode == SLOW:
            await asyncio.sleep(self.delay_s)
        elif self.mode == ERROR:
            return self.error_response()
        elif self.mode == GARBAGE:
            body = self.garbage if isinstance(self.garbage, bytes) else json.dumps(self.garbage).encode()
            return web.Response(body=body, content_type="application/json")
        return None

    def error_response(self) -> web.Response:
        return web.Response(status=self.status, text="internal error\n")


class PrometheusStandIn(StandIn):
    def __init__(self, value: float, port: int = 0):
        super().__init__(port)
        self.value = value
        self.queries: list[str] = []

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/api/v1/query", self._query)

    def error_response(self) -> web.Response:
        return web.json_response({"status": "error", "errorType": "internal",
                                  "error": "opening storage failed: lock DB directory: resource temporarily unavailable"},
                                 status=self.status)

    async def _query(self, request: web.Request) -> web.Response:
        params = dict(request.query)
        if request.method == "POST":
            params.update(await request.post())
        self.queries.append(str(params.get("query")))
        fault = await self.faulty()
        if fault is not None:
            return fault
        at = float(params.get("time") or 0)
        return web.json_response({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {}, "value": [at, repr(float(self.value))]}]}})


class CarbonStandIn(StandIn):
    def __init__(self, g_per_kwh: dict[str, float], port: int = 0):
        super().__init__(port)
        self.g_per_kwh = dict(g_per_kwh)
        self.status = 500

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/v3/carbon-intensity/latest", self._latest)

    def error_response(self) -> web.Response:
        return web.json_response({"message": "Internal server error"}, status=self.status)

    async def _latest(self, request: web.Request) -> web.Response:
        zone = request.query.get("zone", "")
        fault = await self.faulty()
        if fault is not None:
            return fault
        if zone not in self.g_per_kwh:
            return web.json_response({"message": f"zone {zone} not found"}, status=404)
        now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
        return web.json_response({"zone": zone, "carbonIntensity": self.g_per_kwh[zone],
                                  "datetime": now.isoformat().replace("+00:00", "Z"),
                                  "updatedAt": now.isoformat().replace("+00:00", "Z"), "isEstimated": False})


class StreamsExporter(StandIn):
    """`/metrics`: `wattwise_active_streams{namespace="retail",workload="checkout-cams",pod="gw-1"}`
    (`streams`; None: the series is not exported, as from a gateway that stopped)."""

    def __init__(self, streams: float | None, port: int = 0):
        super().__init__(port)
        self.streams = streams

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/metrics", self._metrics)

    async def _metrics(self, _request: web.Request) -> web.Response:
        lines = ["# TYPE wattwise_active_streams gauge"]
        if self.streams is not None:
            lines.append(f'wattwise_active_streams{{namespace="retail",workload="checkout-cams",pod="gw-1"}} '
                         f"{self.streams:g}")
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")

    def scrape_config(self, interval_s: float = 1.0) -> str:
        return (f"global:\n  scrape_interval: {interval_s:g}s\n  evaluation_interval: {interval_s:g}s\n"
                f"scrape_configs:\n  - job_name: gateway\n    scrape_interval: {interval_s:g}s\n"
                f"    static_configs:\n      - targets: ['127.0.0.1:{self.port}']\n")
