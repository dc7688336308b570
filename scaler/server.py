"""The scaler's servers on one asyncio loop: the main port (ExternalScaler, health, optional
reflection; plaintext, TLS or mTLS) and a plaintext health port for Kubernetes gRPC probes.

Graceful stop: health goes NOT_SERVING, open streams end with OK, the main server stops
accepting and lets in-flight calls finish within the grace period, then the health port closes.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from wattwise.listen import host_port
from wattwise.scaler.core import ScalerCore
from wattwise.scaler.metrics import ScalerMetrics
from wattwise.scaler.proto import externalscaler_pb2 as pb
from wattwise.scaler.refresher import PlanRefresher
from wattwise.scaler.servicer import ChangeNotifier, ExternalScalerServicer, add_to_server
from wattwise.scaler.state import ScalerState
from wattwise.scaler.tls import ReloadingCredentials

log = logging.getLogger(__name__)

GRPC_LOGGER = "grpc._cython.cygrpc"
CALLER_GONE = "ExecuteBatchError raised in core by servicer method"


class CallerGoneFilter(logging.Filter):
    """gRPC's own logger reports a reply it could not send as an ERROR with a traceback:
    `ExecuteBatchError raised in core by servicer method [...]`. The handler had answered; the send
    failed because the caller had already given up (its deadline passed or it closed the
    connection between our answer and grpc's send), which is normal under load and says nothing
    about WattWise. Such a record becomes one INFO line naming the method; every other grpc record
    passes unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and str(record.msg).startswith(CALLER_GONE):
            method = record.getMessage()[len(CALLER_GONE):].strip(" []")
            record.msg, record.args = "reply to %s not sent: the caller had given up (deadline passed or connection " \
                                      "closed) before gRPC sent it", (method,)
            record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
            record.exc_info = record.exc_text = None
            return logging.getLogger(record.name).isEnabledFor(logging.INFO)
        return True


def quiet_caller_gone() -> None:
    """Install `CallerGoneFilter` on gRPC's logger (once per process)."""
    logger = logging.getLogger(GRPC_LOGGER)
    if not any(isinstance(f, CallerGoneFilter) for f in logger.filters):
        logger.addFilter(CallerGoneFilter())


SERVICE_NAME = pb.DESCRIPTOR.services_by_name["ExternalScaler"].full_name
MAX_REQUEST_BYTES = 1024 * 1024   # a request within the metadata limits is at most about 300 KiB (docs/scaler.md)


@dataclass(frozen=True)
class ServerConfig:
    host: str = "0.0.0.0"
    grpc_port: int = 6000
    health_port: int = 6001
    reflection: bool = False
    grace_s: float = 10.0


class ScalerServer:
    """Owns the gRPC servers. Create, `await start()`, `await stop()` on the same loop."""

    def __init__(self, core: ScalerCore, refresher: PlanRefresher, metrics: ScalerMetrics,
                 config: ServerConfig = ServerConfig(), tls: ReloadingCredentials | None = None):
        self.core = core
        self.refresher = refresher
        self.metrics = metrics
        self.config = config
        self._tls = tls
        self.grpc_port = 0
        self.health_port = 0
        self.health = health.aio.HealthServicer()
        self._main: grpc.aio.Server | None = None
        self._health_server: grpc.aio.Server | None = None
        self._notifier: ChangeNotifier | None = None
        self.servicer: ExternalScalerServicer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        quiet_caller_gone()
        self._notifier = ChangeNotifier(self._loop)
        self.servicer = ExternalScalerServicer(self.core, self._notifier, self.metrics)
        self._main = grpc.aio.server(options=[("grpc.so_reuseport", 0),
                                              ("grpc.max_receive_message_length", MAX_REQUEST_BYTES)])
        add_to_server(self.servicer, self._main)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._main)
        if self.config.reflection:
            reflection.enable_server_reflection(
                (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                 reflection.SERVICE_NAME), self._main)
        address = host_port(self.config.host, self.config.grpc_port)
        if self._tls is not None:
            self.grpc_port = self._main.add_secure_port(address, self._tls.credentials)
        else:
            self.grpc_port = self._main.add_insecure_port(address)
        self._health_server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._health_server)
        self.health_port = self._health_server.add_insecure_port(host_port(self.config.host, self.config.health_port))
        await self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        await self.health.set(SERVICE_NAME, health_pb2.HealthCheckResponse.NOT_SERVING)
        self.refresher.add_listener(self._on_state)
        if self.refresher.state() is not None:        # planned before the server started: gauges now
            self.metrics.observe_state(self.refresher.state(), len(self.core.registry))
        await self._main.start()
        await self._health_server.start()
        if self.refresher.state() is not None:
            await self.health.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
        log.info("scaler listening on %s (%s), health on %s (plaintext)%s", host_port(self.config.host, self.grpc_port),
                 "plaintext" if self._tls is None else ("mTLS" if self._tls.files.mutual else "TLS"),
                 host_port(self.config.host, self.health_port), ", reflection on" if self.config.reflection else "")

    def _on_state(self, state: ScalerState) -> None:
        """Refresher thread: wake the streams, mark ready, update the gauges."""
        self.metrics.observe_state(state, len(self.core.registry))
        if self._notifier is not None:
            self._notifier.notify_threadsafe()
        loop = self._loop
        if loop is not None and not loop.is_closed():
            asyncio.run_coroutine_threadsafe(self._mark_ready(), loop)

    async def _mark_ready(self) -> None:
        if self._notifier is not None and not self._notifier.closing.is_set():
            await self.health.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace_s: float | None = None) -> None:
        grace = self.config.grace_s if grace_s is None else grace_s
        log.info("shutting down: health NOT_SERVING, closing streams, %.1f s grace for in-flight calls", grace)
        await self.health.enter_graceful_shutdown()
        if self._notifier is not None:
            self._notifier.close()
        if self._main is not None:
            await self._main.stop(grace)
        if self._health_server is not None:
            await self._health_server.stop(min(grace, 1.0))
        log.info("scaler stopped")

    async def wait_for_termination(self) -> None:
        if self._main is not None:
            await self._main.wait_for_termination()
