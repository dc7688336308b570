"""Health on both ports, reflection on request, and the scaler's own Prometheus metrics."""

from __future__ import annotations

import urllib.request

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.scaler.helpers import demo_ref, keda_poll


def _check(port, service=""):
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        return health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status


def test_health_serving_on_health_port_and_main_port(demo):
    for port in (demo.health_port, demo.grpc_port):
        assert _check(port) == health_pb2.HealthCheckResponse.SERVING
        assert _check(port, "externalscaler.ExternalScaler") == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_external_scaler(demo):
    with grpc.insecure_channel(f"127.0.0.1:{demo.grpc_port}") as ch:
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        replies = list(stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                                 timeout=5))
    names = {s.name for s in replies[0].list_services_response.service}
    assert "externalscaler.ExternalScaler" in names and "grpc.health.v1.Health" in names


def test_metrics_have_conventional_names_and_values(demo, stub):
    keda_poll(stub, demo_ref("retail/checkout-cams"))
    demo.scaler.refresher.refresh_once()
    server, _ = demo.scaler.metrics.serve("127.0.0.1", 0)
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics", timeout=5).read().decode()
    finally:
        server.shutdown()
    planned = demo.scaler.refresher.current().plan.workloads["retail/checkout-cams"].replicas
    assert f'wattwise_planned_replicas{{objective="energy",workload="retail/checkout-cams"}} {planned}.0' in text
    assert 'wattwise_scaler_rpc_duration_seconds_bucket{code="OK",le="0.001",method="GetMetrics"}' in text
    for name in ("wattwise_predicted_power_watts{", "wattwise_predicted_carbon_grams_per_hour{",
                 "wattwise_telemetry_staleness_seconds{", "wattwise_degraded 0.0", "wattwise_plan_timestamp_seconds"):
        assert name in text, name
