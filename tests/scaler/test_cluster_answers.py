"""KEDA's calls against the scaler planning the cluster's ScaledObjects (a `ClusterRegistry`), over
a real gRPC channel: GetMetricSpec answered for a ScaledObject not listed yet (KEDA builds the HPA
from it: refused, the HPA falls back to CPU); a ScaledObject left out as a duplicate never gets the
other's replicas; a push stream whose ScaledObject goes away ends INVALID_ARGUMENT, not UNKNOWN."""

from __future__ import annotations

import grpc
import pytest

from tests.scaler.helpers import LOOPBACK, NEVER, SettableDemand, snapshot, stub_for
from tests.scaler.test_cluster_registry import Source
from wattwise.models.trigger_metadata import parse_metadata
from wattwise.scaler.app import ThreadedScaler, build_scaler, settings_from_snapshot
from wattwise.scaler.cluster_registry import ClusterRegistry
from wattwise.scaler.proto import externalscaler_pb2 as pb
from wattwise.scaler.sources import ScenarioCarbon, ScenarioInventory, catalogue, demand_query, demo_metadata

KEY = "retail/checkout-cams"


def metadata(snap, key=KEY) -> dict[str, str]:
    return demo_metadata(next(w for w in snap.workloads if w.key == key))


@pytest.fixture
def rig():
    snap = snapshot()
    w = next(w for w in snap.workloads if w.key == KEY)
    source = Source([parse_metadata(w.name, w.namespace, metadata(snap))])
    demand = SettableDemand({demand_query(w): 20})
    scaler = build_scaler(inventory=ScenarioInventory(snap), demand=demand, carbon=ScenarioCarbon(snap),
                          catalogue_by_key=catalogue(snap), settings=settings_from_snapshot(snap, NEVER),
                          config=LOOPBACK, registry=ClusterRegistry(source))
    scaler.refresher.refresh_once()
    running = ThreadedScaler(scaler, start_refresher=False)
    channel, stub = stub_for(running.grpc_port)
    yield snap, source, scaler, stub
    channel.close()
    running.stop()


def test_get_metric_spec_is_answered_before_the_scaled_object_is_listed(rig):
    snap, source, _, stub = rig
    unknown = pb.ScaledObjectRef(name="parking-lpr", namespace="retail",
                                 scalerMetadata=metadata(snap, "retail/parking-lpr"))
    spec = stub.GetMetricSpec(unknown, timeout=5)
    assert [(s.metricName, s.targetSizeFloat) for s in spec.metricSpecs] == [("wattwise-retail-parking-lpr", 1.0)]
    with pytest.raises(grpc.RpcError) as e:
        stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=unknown, metricName="wattwise-retail-parking-lpr"),
                        timeout=5)
    assert e.value.code() is grpc.StatusCode.INVALID_ARGUMENT and "no ScaledObject in the cluster" in e.value.details()
    bad = pb.ScaledObjectRef(name="x", namespace="retail", scalerMetadata={"workload": "x", "streams": "-3"})
    with pytest.raises(grpc.RpcError) as e:
        stub.GetMetricSpec(bad, timeout=5)                  # metadata that is wrong is still refused
    assert e.value.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_a_scaled_object_left_out_as_a_duplicate_never_gets_the_other_s_replicas(rig):
    snap, source, _, stub = rig
    owner = pb.ScaledObjectRef(name="checkout-cams", namespace="retail", scalerMetadata=metadata(snap))
    name = stub.GetMetricSpec(owner, timeout=5).metricSpecs[0].metricName
    assert stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=owner, metricName=name), timeout=5).metricValues
    source.set(source.result.requests, left_out=[
        ("retail/checkout-cams-copy", f"names workload {KEY} as ScaledObject retail/checkout-cams does")])
    copy = pb.ScaledObjectRef(name="checkout-cams-copy", namespace="retail", scalerMetadata=metadata(snap))
    with pytest.raises(grpc.RpcError) as e:
        stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=copy, metricName=name), timeout=5)
    assert e.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "ScaledObject retail/checkout-cams-copy is left out of the plan: names workload" in e.value.details()


def test_a_push_stream_whose_scaled_object_goes_away_ends_invalid_argument(rig):
    snap, source, scaler, stub = rig
    owner = pb.ScaledObjectRef(name="checkout-cams", namespace="retail", scalerMetadata=metadata(snap))
    stream = stub.StreamIsActive(owner, timeout=20)
    assert next(stream).result is True
    source.set([])                                          # the ScaledObject deleted
    with pytest.raises(grpc.RpcError) as e:
        next(stream)
    assert e.value.code() is grpc.StatusCode.INVALID_ARGUMENT, e.value
    assert f"no ScaledObject in the cluster asks this scaler for workload {KEY}" in e.value.details()
