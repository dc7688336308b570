"""The gRPC door: `externalscaler.ExternalScaler` on grpc.aio. Decode, call `ScalerCore`, encode.

Errors: invalid metadata -> INVALID_ARGUMENT naming the key; a workload without a trustworthy
plan yet -> UNAVAILABLE (the HPA keeps the current replica count on a metric error).

Streams: `StreamIsActive` sends `true` when the workload goes from inactive to active (the state
before the first message counts as inactive, so an already-active workload gets one `true` on
open) and nothing else; `StreamMetricSpec` sends the specs once on open (they never change: the
target is always 1). Both end with status OK when the server shuts down.
"""

from __future__ import annotations

import asyncio
import logging
import time

import grpc

from wattwise.scaler.answer import NotPlanned
from wattwise.scaler.core import ScalerCore
from wattwise.scaler.metadata import MetadataError
from wattwise.scaler.metrics import ScalerMetrics
from wattwise.scaler.proto import externalscaler_pb2 as pb
from wattwise.scaler.proto import externalscaler_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

STREAM_CHECK_S = 1.0   # how often an idle stream checks that its client is still there


class ChangeNotifier:
    """Wakes stream handlers on the event loop when the refresher swaps in a new state."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop
        self._event = asyncio.Event()
        self.closing = asyncio.Event()

    def notify_threadsafe(self, *_args) -> None:
        self._loop.call_soon_threadsafe(self._notify)

    def _notify(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait(self, timeout_s: float) -> None:
        event = self._event
        waiters = [asyncio.ensure_future(event.wait()), asyncio.ensure_future(self.closing.wait())]
        try:
            await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()

    def close(self) -> None:
        self.closing.set()
        self._notify()


class ExternalScalerServicer(pb_grpc.ExternalScalerServicer):
    def __init__(self, core: ScalerCore, notifier: ChangeNotifier, metrics: ScalerMetrics):
        self._core = core
        self._notifier = notifier
        self._metrics = metrics
        self._open_streams = 0
        self._basis: dict[str, tuple[bool, int]] = {}   # workload -> (pods known, surge) last reported

    @property
    def open_streams(self) -> int:
        return self._open_streams

    async def _refuse(self, context, method: str, exc: Exception):
        if isinstance(exc, MetadataError):
            self._metrics.invalid_metadata.labels(exc.key).inc()
            log.info("%s refused: %s", method, exc)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        log.warning("%s unavailable: %s", method, exc)
        await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))

    def _observe(self, method: str, code: str, t0: float) -> None:
        self._metrics.rpc_duration.labels(method, code).observe(time.perf_counter() - t0)

    async def GetMetricSpec(self, request, context):
        t0 = time.perf_counter()
        try:
            spec = self._core.metric_spec(request.name, request.namespace, request.scalerMetadata)
        except (MetadataError, NotPlanned) as e:
            self._observe("GetMetricSpec", _code(e), t0)
            await self._refuse(context, "GetMetricSpec", e)
        reply = _spec_reply(spec)
        self._observe("GetMetricSpec", "OK", t0)
        return reply

    async def GetMetrics(self, request, context):
        t0 = time.perf_counter()
        ref = request.scaledObjectRef
        try:
            value = self._core.metric_value(ref.name, ref.namespace, ref.scalerMetadata, request.metricName)
        except (MetadataError, NotPlanned) as e:
            self._observe("GetMetrics", _code(e), t0)
            await self._refuse(context, "GetMetrics", e)
        reply = pb.GetMetricsResponse(metricValues=[pb.MetricValue(
            metricName=value.metric_name, metricValue=value.value.as_int, metricValueFloat=value.value.as_float)])
        if value.held or value.degraded:
            log.debug("GetMetrics %s = %s (held=%s, degraded=%s)", value.workload, value.value.as_float,
                      value.held, value.degraded)
        self._note_basis(value)
        self._observe("GetMetrics", "OK", t0)
        return reply

    def _note_basis(self, value) -> None:
        """Count and gauge what the value rests on; log when a workload's basis or surge changes."""
        self._metrics.answers.labels("rollout" if value.pods_known else "plan").inc()
        self._metrics.surge.labels(value.workload).set(value.surge)
        basis = (value.pods_known, value.surge)
        if self._basis.get(value.workload) != basis:
            self._basis[value.workload] = basis
            if not value.pods_known:
                log.info("%s: running/ready pods unknown; answering the plan's %d replicas", value.workload,
                         value.planned)
            elif value.surge:
                log.info("%s: asking for %d replicas: the plan's %d plus %d off-plan until planned pods are "
                         "ready (make before break)", value.workload, value.value.as_int, value.planned, value.surge)
            else:
                log.info("%s: answering the plan's %d replicas (no surge: planned pods ready or none off-plan)",
                         value.workload, value.planned)

    async def IsActive(self, request, context):
        t0 = time.perf_counter()
        try:
            active = self._core.is_active(request.name, request.namespace, request.scalerMetadata)
        except (MetadataError, NotPlanned) as e:
            self._observe("IsActive", _code(e), t0)
            await self._refuse(context, "IsActive", e)
        self._observe("IsActive", "OK", t0)
        return pb.IsActiveResponse(result=active)

    async def StreamIsActive(self, request, context):
        try:
            req = self._core.request(request.name, request.namespace, request.scalerMetadata)
        except MetadataError as e:
            await self._refuse(context, "StreamIsActive", e)
        self._open_streams += 1
        log.info("StreamIsActive opened for %s", req.workload_key)
        was_active = False
        try:
            while not self._notifier.closing.is_set() and not context.done():
                self._core.registry.touch(req)      # an open stream keeps the registration alive
                try:
                    active = self._core.is_active(request.name, request.namespace, request.scalerMetadata)
                except NotPlanned:
                    active = was_active                 # unknown: no transition
                if active and not was_active:
                    await context.write(pb.IsActiveResponse(result=True))
                    log.info("pushed active=true for %s", req.workload_key)
                was_active = active
                await self._notifier.wait(STREAM_CHECK_S)
        finally:
            self._open_streams -= 1
        log.info("StreamIsActive closed for %s", req.workload_key)

    async def StreamMetricSpec(self, request, context):
        try:
            spec = self._core.metric_spec(request.name, request.namespace, request.scalerMetadata)
        except MetadataError as e:
            await self._refuse(context, "StreamMetricSpec", e)
        self._open_streams += 1
        try:
            await context.write(_spec_reply(spec))
            while not self._notifier.closing.is_set() and not context.done():
                await self._notifier.wait(STREAM_CHECK_S)
        finally:
            self._open_streams -= 1


def _spec_reply(spec) -> pb.GetMetricSpecResponse:
    return pb.GetMetricSpecResponse(metricSpecs=[pb.MetricSpec(
        metricName=spec.metric_name, targetSize=spec.target.as_int, targetSizeFloat=spec.target.as_float)])


def _code(exc: Exception) -> str:
    return "INVALID_ARGUMENT" if isinstance(exc, MetadataError) else "UNAVAILABLE"
