"""Every RPC through a real gRPC channel, as KEDA calls them, against the demo scaler."""

from __future__ import annotations

import math

import grpc
import pytest

from tests.scaler.helpers import demo_ref, keda_poll, ref, snapshot
from wattwise.models.planner import plan
from wattwise.scaler.proto import externalscaler_pb2 as pb

DEMO_KEYS = sorted(w.key for w in snapshot().workloads)


@pytest.mark.parametrize("key", DEMO_KEYS)
def test_keda_poll_lands_the_hpa_on_the_plan(demo, stub, key):
    spec, metrics, active = keda_poll(stub, demo_ref(key))
    (s,) = spec.metricSpecs
    assert s.metricName == "wattwise-" + key.replace("/", "-")
    assert (s.targetSize, s.targetSizeFloat) == (1, 1.0)
    (v,) = metrics.metricValues
    assert v.metricName == s.metricName
    assert v.metricValue == math.ceil(v.metricValueFloat)           # both fields, int = ceil(float)
    planned = demo.scaler.refresher.current().plan.workloads[key].replicas
    assert v.metricValueFloat == planned
    assert math.ceil(v.metricValueFloat / s.targetSizeFloat) == planned   # what the HPA computes
    assert active.result == (planned > 0)


def test_answers_equal_the_core_plan_of_the_same_snapshot(demo, stub):
    """The door decides nothing: GetMetrics returns exactly the planner's replicas."""
    view = demo.scaler.refresher.current()
    expected, _ = plan(view.snapshot)
    for key in DEMO_KEYS:
        _, metrics, _ = keda_poll(stub, demo_ref(key))
        assert metrics.metricValues[0].metricValueFloat == expected.workloads[key].replicas


def test_keda_prefix_free_metric_name_is_required(stub):
    r = demo_ref("retail/checkout-cams")
    with pytest.raises(grpc.RpcError) as e:
        stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=r, metricName="s0-wattwise-retail-checkout-cams"))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "metricName" in e.value.details() and "wattwise-retail-checkout-cams" in e.value.details()


@pytest.mark.parametrize("method", ["GetMetricSpec", "IsActive", "GetMetrics", "StreamIsActive", "StreamMetricSpec"])
def test_invalid_metadata_is_invalid_argument_on_every_rpc(stub, method):
    bad = ref("so", "shop", workload="cams", streams="lots")
    with pytest.raises(grpc.RpcError) as e:
        if method == "GetMetrics":
            stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=bad, metricName="wattwise-shop-cams"), timeout=5)
        elif method.startswith("Stream"):
            list(getattr(stub, method)(bad, timeout=5))
        else:
            getattr(stub, method)(bad, timeout=5)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "scalerMetadata.streams" in e.value.details() and ">= 0" in e.value.details()


def test_missing_key_is_named(stub):
    with pytest.raises(grpc.RpcError) as e:
        stub.GetMetricSpec(ref("so", "shop", streams="3"), timeout=5)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "scalerMetadata.workload: is required" in e.value.details()


def test_new_workload_is_planned_after_registration(demo, stub):
    r = ref("lobby", "shop", workload="lobby-cams", streams="6", tee="tdx,sev-snp", maxReplicas="4")
    stub.GetMetricSpec(r, timeout=5)                      # registers, wakes no thread here: refresh by hand
    demo.scaler.refresher.refresh_once()
    _, metrics, active = keda_poll(stub, r)
    v = metrics.metricValues[0]
    assert 1 <= v.metricValueFloat <= 4 and active.result
    wp = demo.scaler.refresher.current().plan.workloads["shop/lobby-cams"]
    assert wp.replicas == v.metricValueFloat


def test_unplanned_workload_is_unavailable_not_zero(stub):
    r = ref("late", "shop", workload="late-cams", streams="6")
    with pytest.raises(grpc.RpcError) as e:
        stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=r, metricName="wattwise-shop-late-cams"), timeout=5)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE


def test_zero_demand_is_inactive_and_value_zero_with_target_still_one(demo, stub):
    r = ref("quiet", "shop", workload="quiet-cams", streams="0")
    stub.GetMetricSpec(r, timeout=5)
    demo.scaler.refresher.refresh_once()
    spec, metrics, active = keda_poll(stub, r)
    assert (spec.metricSpecs[0].targetSize, spec.metricSpecs[0].targetSizeFloat) == (1, 1.0)
    assert (metrics.metricValues[0].metricValue, metrics.metricValues[0].metricValueFloat) == (0, 0.0)
    assert active.result is False


def test_stream_metric_spec_sends_current_spec_on_open(demo, stub):
    call = stub.StreamMetricSpec(demo_ref("city/city-traffic"), timeout=10)
    first = next(call)
    assert first == stub.GetMetricSpec(demo_ref("city/city-traffic"))
    call.cancel()


def test_objective_metadata_reads_the_plan_of_that_objective(demo, stub):
    r_energy = ref("ft", "analytics", workload="footfall-counter", streams="120", objective="energy")
    stub.GetMetricSpec(r_energy, timeout=5)
    demo.scaler.refresher.refresh_once()
    state = demo.scaler.refresher.state()
    assert [o.kind for o in state.views] == ["energy"]
    r_carbon = ref("ft", "analytics", workload="footfall-counter", streams="120", objective="carbon")
    stub.GetMetricSpec(r_carbon, timeout=5)
    demo.scaler.refresher.refresh_once()
    state = demo.scaler.refresher.state()
    assert sorted(o.kind for o in state.views) == ["carbon", "energy"]
    _, metrics, _ = keda_poll(stub, r_carbon)
    carbon_view = next(v for o, v in state.views.items() if o.kind == "carbon")
    assert metrics.metricValues[0].metricValueFloat == carbon_view.plan.workloads["analytics/footfall-counter"].replicas


def test_demand_no_node_can_serve_with_no_plan_to_keep_is_unavailable_not_zero(demo, stub):
    """A latency bound no class meets: no replica can be placed and none was ever planned. A 0
    would let KEDA scale the workload away; UNAVAILABLE keeps what runs and says why."""
    r = ref("fast", "shop", workload="fast-cams", streams="6", latencyMs="0.001")
    stub.GetMetricSpec(r, timeout=5)
    demo.scaler.refresher.refresh_once()
    wp = demo.scaler.refresher.current().plan.workloads["shop/fast-cams"]
    assert wp.asked_replicas == 0 and wp.unmet_fps > 0
    for call in (lambda: stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=r, metricName="wattwise-shop-fast-cams"),
                                         timeout=5),
                 lambda: stub.IsActive(r, timeout=5)):
        with pytest.raises(grpc.RpcError) as e:
            call()
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "no replica planned" in e.value.details() and "current replica count is kept" in e.value.details()
