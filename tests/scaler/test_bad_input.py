"""Bad input at the gRPC door, over a real channel: oversized names and values are refused before
anything is kept, what is kept is bounded in bytes and dropped when the registry lets it go,
refusals quote only a short prefix of a bad value (status and log), and bytes that are not a
protobuf message get INVALID_ARGUMENT with one log line instead of UNKNOWN and a traceback."""

from __future__ import annotations

import logging

import grpc
import pytest

from wattwise.scaler.metadata import (MAX_KEYS, MAX_NAME_CHARS, MAX_NAMESPACE_CHARS, MAX_VALUE_CHARS, QUOTE_CHARS)
from wattwise.scaler.proto import externalscaler_pb2 as pb
from wattwise.scaler.server import MAX_REQUEST_BYTES
from wattwise.scaler.servicer import MAX_STATUS_CHARS

from tests.scaler.helpers import SettableDemand, ref, start_demo, start_live, stub_for

METHODS = ["GetMetricSpec", "IsActive", "GetMetrics", "StreamIsActive", "StreamMetricSpec"]


@pytest.fixture(scope="module")
def door():
    scaler = start_demo()
    channel, stub = stub_for(scaler.grpc_port)
    yield scaler, channel, stub
    channel.close()
    scaler.stop(1.0)


def _call(stub, method, so, metric_name="wattwise-shop-cams"):
    if method == "GetMetrics":
        return stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=so, metricName=metric_name), timeout=5)
    if method.startswith("Stream"):
        return list(getattr(stub, method)(so, timeout=5))
    return getattr(stub, method)(so, timeout=5)


def _refused(stub, so, method="GetMetricSpec", **kw) -> str:
    with pytest.raises(grpc.RpcError) as e:
        _call(stub, method, so, **kw)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()[:200]
    details = e.value.details()
    assert len(details) <= MAX_STATUS_CHARS
    return details


# -- (a) oversized input is refused; what is kept is bounded and dropped -----------------------

@pytest.mark.parametrize("so, expected", [
    (ref("n" * (MAX_NAME_CHARS + 1), "shop", workload="cams", streams=1), "scaledObjectRef.name: too long (254"),
    (ref("cams", "s" * (MAX_NAMESPACE_CHARS + 1), workload="cams", streams=1),
     "scaledObjectRef.namespace: too long (64"),
    (ref("cams", "shop", workload="cams", query="q" * (MAX_VALUE_CHARS + 1)),
     "scalerMetadata.query: value too long (4097 characters)"),
    (ref("cams", "shop", workload="cams", streams=1, **{f"k{i}": "v" for i in range(MAX_KEYS)}),
     "scalerMetadata: 66 keys (at most 64"),
    (ref("cams", "shop", workload="cams", streams=1, **{"k" * 129: "v"}),
     "... (129 characters)]: key too long (at most 128 characters)"),
])
def test_oversized_names_and_values_are_refused_on_every_rpc(door, so, expected):
    _, _, stub = door
    for method in METHODS:
        assert expected in _refused(stub, so, method)


def test_limits_themselves_are_accepted(door):
    scaler, _, stub = door
    so = ref("n" * MAX_NAME_CHARS, "s" * MAX_NAMESPACE_CHARS, workload="edge-cams",
             query="sum(x)" + " " * (MAX_VALUE_CHARS - 6))
    stub.GetMetricSpec(so, timeout=5)                       # valid: registered
    assert "s" * MAX_NAMESPACE_CHARS + "/edge-cams" in {r.workload_key for r in scaler.scaler.registry.active()}


def test_invalid_input_is_never_kept_and_the_cache_is_bounded_in_bytes(door):
    scaler, _, stub = door
    cache = scaler.scaler.core.cache
    before = len(cache)
    for i in range(300):                                  # a fuzzer: distinct, large, invalid
        _refused(stub, ref(f"so-{i}", "shop", workload="cams", streams="1", **{f"junk{i}": "j" * MAX_VALUE_CHARS}))
    assert len(cache) == before
    cache.max_bytes = 64 * 1024
    for i in range(100):                                  # valid and distinct: kept within the budget
        stub.GetMetricSpec(ref(f"big-{i}", "shop", workload=f"big-{i}", query="sum(x)" + " " * 3000), timeout=5)
    assert cache.bytes <= cache.max_bytes and 0 < len(cache) < 100
    metrics = scaler.scaler.metrics.registry
    assert metrics.get_sample_value("wattwise_scaler_invalid_metadata_total", {"key": "unknown"}) >= 300
    assert metrics.get_sample_value("wattwise_scaler_invalid_metadata_total", {"key": "junk7"}) is None


class Clock:
    def __init__(self, now_s):
        self.now_s = now_s

    def __call__(self):
        return self.now_s


def test_what_the_registry_lets_go_is_dropped_from_the_cache():
    clock = Clock(1_700_000_000.0)
    scaler = start_live(SettableDemand({"sum(x)": 3}), clock=clock, start_refresher=False, registry_ttl_s=60)
    channel, stub = stub_for(scaler.grpc_port)
    cache = scaler.scaler.core.cache
    try:
        stub.GetMetricSpec(ref("cams", "shop", workload="cams", query="sum(x)"), timeout=5)
        stub.GetMetricSpec(ref("door", "shop", workload="door", streams="2"), timeout=5)
        assert len(cache) == 2
        stub.GetMetricSpec(ref("cams", "shop", workload="cams", query="sum(x)", maxReplicas="9"), timeout=5)
        assert len(cache) == 2                            # the changed ScaledObject's old metadata is gone
        clock.now_s += 45
        stub.GetMetricSpec(ref("door", "shop", workload="door", streams="2"), timeout=5)
        clock.now_s += 45                                 # cams not heard from for 90 s: expired
        scaler.scaler.refresher.refresh_once()
        assert [r.workload_key for r in scaler.scaler.registry.active()] == ["shop/door"]
        assert len(cache) == 1
    finally:
        channel.close()
        scaler.stop(1.0)


# -- (b) refusals quote a short prefix -------------------------------------------------------

def test_a_huge_bad_value_is_quoted_by_prefix_in_status_and_log(door, caplog):
    _, _, stub = door
    huge = "9" * 15_000 + "x"
    with caplog.at_level(logging.INFO, logger="wattwise.scaler.servicer"):
        details = _refused(stub, ref("so", "shop", workload="cams", streams=huge))     # not RESOURCE_EXHAUSTED
        assert "(15001 characters)" in details and huge[:QUOTE_CHARS] in details and huge[:QUOTE_CHARS + 1] not in details
        details = _refused(stub, ref("so", "shop", workload="cams", streams="7" * 4000 + "x"))
        assert "invalid value" in details and "(4001 characters)" in details
        details = _refused(stub, ref("so", "shop", workload="w" * 2000, streams="1"))
        assert "(2000 characters)" in details
        details = _refused(stub, ref("so", "shop", workload="cams", streams="1", **{"u" * 120: "v"}))
        assert "unknown key" in details and "(120 characters)" in details
        details = _refused(stub, ref("cams", "shop", workload="cams", streams="1"), "GetMetrics",
                           metric_name="m" * 100_000)
        assert "metricName: unknown metric" in details and "(100000 characters)" in details
    lines = [r.getMessage() for r in caplog.records if r.name == "wattwise.scaler.servicer"]
    assert len(lines) == 5 and all(len(line) < 800 for line in lines), [len(line) for line in lines]


# -- (c) malformed protobuf bytes ------------------------------------------------------------

@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("raw", [b"\xff\xff\xff", b"\x0a\x05\xff\xfe\xfd\xfc\xfb", b"\x12"])
def test_malformed_bytes_are_invalid_argument_with_one_log_line(door, caplog, method, raw):
    _, channel, _ = door
    path = f"/externalscaler.ExternalScaler/{method}"
    make = channel.unary_stream if method.startswith("Stream") else channel.unary_unary
    call = make(path, request_serializer=None, response_deserializer=None)
    with caplog.at_level(logging.INFO):
        with pytest.raises(grpc.RpcError) as e:
            result = call(raw, timeout=5)
            if method.startswith("Stream"):
                list(result)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.details().startswith("request is not a valid externalscaler.")
    assert "protobuf message" in e.value.details() and len(e.value.details()) <= MAX_STATUS_CHARS
    ours = [r for r in caplog.records if r.name == "wattwise.scaler.servicer"]
    assert len(ours) == 1 and "\n" not in ours[0].getMessage() and ours[0].levelno == logging.INFO
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def test_well_formed_bytes_still_work_through_the_lenient_decoder(door):
    _, channel, _ = door
    call = channel.unary_unary("/externalscaler.ExternalScaler/GetMetricSpec", request_serializer=None,
                               response_deserializer=pb.GetMetricSpecResponse.FromString)
    reply = call(ref("lobby", "shop", workload="lobby", streams="3").SerializeToString(), timeout=5)
    assert reply.metricSpecs[0].metricName == "wattwise-shop-lobby"


def test_a_message_past_the_size_limit_is_refused_by_grpc_without_a_traceback(door, caplog):
    _, _, stub = door
    with caplog.at_level(logging.INFO):
        with pytest.raises(grpc.RpcError) as e:
            stub.IsActive(ref("so", "shop", workload="cams", query="q" * (MAX_REQUEST_BYTES + 1)), timeout=5)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
