"""The gRPC door: `externalscaler.ExternalScaler` on grpc.aio. Decode, call `ScalerCore`, encode.

Errors: invalid metadata (oversized names and values included) -> INVALID_ARGUMENT naming the key;
bytes that are not the RPC's protobuf message -> INVALID_ARGUMENT in one line (`add_to_server`
registers lenient decoders, so gRPC's own deserialisation never fails with UNKNOWN and a
traceback); a workload without a trustworthy plan yet -> UNAVAILABLE (the HPA keeps the current
replica count on a metric error). Every status message is short: values are quoted by prefix
(`metadata.quote`) and the whole message is capped at `MAX_STATUS_CHARS`.

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

from wattwise.models.trigger_metadata import MetadataError, quote
from wattwise.scaler.answer import NotPlanned
from wattwise.scaler.core import ScalerCore
from wattwise.scaler.metrics import ScalerMetrics
from wattwise.scaler.proto import externalscaler_pb2 as pb
from wattwise.scaler.proto import externalscaler_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

STREAM_CHECK_S = 1.0   # how often an idle stream checks that its client is still there
MAX_STATUS_CHARS = 1024  # far below gRPC's 16 KiB trailer limit (a longer one turns into RESOURCE_EXHAUSTED)


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
        self._basis: dict[str, tuple[bool, bool, int]] = {}   # workload -> (pods known, surge allowed, surge)
        # labelled metrics by their labels: prometheus_client's labels() takes a lock and checks
        # the labels at each call, several times per RPC otherwise
        self._durations: dict[tuple[str, str], object] = {}
        self._answers: dict[str, object] = {}
        self._surges: dict[str, object] = {}
        core.registry.on_forget(self._forget)

    @property
    def open_streams(self) -> int:
        return self._open_streams

    def _forget(self, request, workload_gone: bool) -> None:
        """The registry let the workload go: so do the per-workload answer records and gauges."""
        if workload_gone:
            self._basis.pop(request.workload_key, None)
            self._surges.pop(request.workload_key, None)
            try:
                self._metrics.surge.remove(request.workload_key)
            except KeyError:
                pass

    async def _refuse(self, context, method: str, exc: Exception):
        message = _short(str(exc))
        if isinstance(exc, MetadataError):
            self._metrics.invalid_metadata.labels(exc.label).inc()
            log.info("%s refused: %s", method, message)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, message)
        log.warning("%s unavailable: %s", method, message)
        await context.abort(grpc.StatusCode.UNAVAILABLE, message)

    async def refuse_malformed(self, context, method: str, bad: "Malformed", t0: float) -> None:
        """Bytes that are not the RPC's message: one log line, INVALID_ARGUMENT."""
        self._observe(method, "INVALID_ARGUMENT", t0)
        message = _short(f"request is not a valid {bad.message_type} protobuf message ({bad.size} bytes): "
                         f"{bad.error}")
        log.info("%s refused: %s", method, message)
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, message)

    def _observe(self, method: str, code: str, t0: float) -> None:
        child = self._durations.get((method, code))
        if child is None:
            child = self._durations[(method, code)] = self._metrics.rpc_duration.labels(method, code)
        child.observe(time.perf_counter() - t0)

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
        rollout = value.pods_known and value.surge_allowed
        basis_label = "rollout" if rollout else "plan"
        answers = self._answers.get(basis_label)
        if answers is None:
            answers = self._answers[basis_label] = self._metrics.answers.labels(basis_label)
        answers.inc()
        surge = self._surges.get(value.workload)
        if surge is None:
            surge = self._surges[value.workload] = self._metrics.surge.labels(value.workload)
        surge.set(value.surge)
        basis = (value.pods_known, value.surge_allowed, value.surge)
        if self._basis.get(value.workload) != basis:
            self._basis[value.workload] = basis
            if not value.surge_allowed:
                log.info("%s: answering the plan's %d replicas (no make-before-break surge: the extender sets no "
                         "pod-deletion costs, or the target is a StatefulSet)", value.workload, value.planned)
            elif not value.pods_known:
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
                try:
                    self._core.registry.touch(req)      # an open stream keeps the registration alive
                    active = self._core.is_active(request.name, request.namespace, request.scalerMetadata)
                except NotPlanned:
                    active = was_active                 # unknown: no transition
                except MetadataError as e:              # its ScaledObject deleted or left out meanwhile
                    await self._refuse(context, "StreamIsActive", e)
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


class Malformed:
    """What a lenient decoder hands the handler instead of a message it could not decode."""

    __slots__ = ("message_type", "size", "error")

    def __init__(self, message_type: str, size: int, error: str):
        self.message_type, self.size, self.error = message_type, size, error


def _lenient(message_cls):
    """A request deserializer that never raises: undecodable bytes become a `Malformed`."""
    name = message_cls.DESCRIPTOR.full_name

    def decode(data: bytes):
        try:
            return message_cls.FromString(data)
        except Exception as e:  # noqa: BLE001 - DecodeError, or anything else the parser raises on junk
            return Malformed(name, len(data), quote(e, 200))
    return decode


def _guarded(servicer: "ExternalScalerServicer", method: str):
    behaviour = getattr(servicer, method)

    async def handle(request, context):
        if isinstance(request, Malformed):
            await servicer.refuse_malformed(context, method, request, time.perf_counter())
        return await behaviour(request, context)
    return handle


def add_to_server(servicer: "ExternalScalerServicer", server) -> None:
    """Register the ExternalScaler service as the generated `add_ExternalScalerServicer_to_server`
    does, but with lenient decoders, so malformed bytes get INVALID_ARGUMENT and one log line
    instead of gRPC's UNKNOWN and an ERROR traceback per call."""
    handlers = {}
    for method, kind, request_cls, response_cls in (
            ("IsActive", grpc.unary_unary_rpc_method_handler, pb.ScaledObjectRef, pb.IsActiveResponse),
            ("StreamIsActive", grpc.unary_stream_rpc_method_handler, pb.ScaledObjectRef, pb.IsActiveResponse),
            ("GetMetricSpec", grpc.unary_unary_rpc_method_handler, pb.ScaledObjectRef, pb.GetMetricSpecResponse),
            ("GetMetrics", grpc.unary_unary_rpc_method_handler, pb.GetMetricsRequest, pb.GetMetricsResponse),
            ("StreamMetricSpec", grpc.unary_stream_rpc_method_handler, pb.ScaledObjectRef,
             pb.GetMetricSpecResponse)):
        handlers[method] = kind(_guarded(servicer, method), request_deserializer=_lenient(request_cls),
                                response_serializer=response_cls.SerializeToString)
    service = pb.DESCRIPTOR.services_by_name["ExternalScaler"].full_name
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
    server.add_registered_method_handlers(service, handlers)


def _short(message: str) -> str:
    return message if len(message) <= MAX_STATUS_CHARS else message[:MAX_STATUS_CHARS - 3] + "..."


def _spec_reply(spec) -> pb.GetMetricSpecResponse:
    return pb.GetMetricSpecResponse(metricSpecs=[pb.MetricSpec(
        metricName=spec.metric_name, targetSize=spec.target.as_int, targetSizeFloat=spec.target.as_float)])


def _code(exc: Exception) -> str:
    return "INVALID_ARGUMENT" if isinstance(exc, MetadataError) else "UNAVAILABLE"
