"""Helpers for the scaler tests: a scaler on loopback, KEDA-shaped calls, a settable demand port."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import grpc

from wattwise.models.scenario import load_scenario
from wattwise.scaler.app import ThreadedScaler, build_demo, build_scaler, settings_from_snapshot
from wattwise.scaler.demand import DemandReading
from wattwise.scaler.proto import externalscaler_pb2 as pb
from wattwise.scaler.proto import externalscaler_pb2_grpc as pb_grpc
from wattwise.scaler.server import ServerConfig
from wattwise.scaler.sources import ScenarioCarbon, ScenarioInventory, catalogue, demo_metadata

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "metro-retail.yaml"
LOOPBACK = ServerConfig(host="127.0.0.1", grpc_port=0, health_port=0, reflection=True, grace_s=2.0)
NEVER = 10 ** 9   # a refresh interval so long that only explicit refreshes and registrations plan


def snapshot():
    return load_scenario(SCENARIO).snapshot


def ref(name, namespace, **metadata) -> pb.ScaledObjectRef:
    return pb.ScaledObjectRef(name=name, namespace=namespace, scalerMetadata={k: str(v) for k, v in metadata.items()})


def demo_ref(key: str) -> pb.ScaledObjectRef:
    w = next(w for w in snapshot().workloads if w.key == key)
    return pb.ScaledObjectRef(name=w.name, namespace=w.namespace, scalerMetadata=demo_metadata(w))


class SettableDemand:
    """A replay port whose answers the test sets: query -> streams (None = no data)."""

    def __init__(self, values=None):
        self._lock = threading.Lock()
        self.values = dict(values or {})

    def set(self, query, value):
        with self._lock:
            self.values[query] = value

    def read(self, query, at_s):
        with self._lock:
            v = self.values.get(query)
        return DemandReading(v, v is not None, "" if v is not None else "no data")


def start_demo(**kwargs) -> ThreadedScaler:
    return ThreadedScaler(build_demo(snapshot(), interval_s=kwargs.pop("interval_s", NEVER),
                                     config=kwargs.pop("config", LOOPBACK), **kwargs))


def start_live(demand, clock=None, config=LOOPBACK, start_refresher=True, interval_s=NEVER,
               registry_ttl_s=600.0, carbon=None, planner=None, pods=None, forecast=None) -> ThreadedScaler:
    """`forecast`: the pre-warming settings, instead of the defaults."""
    snap = snapshot()
    extra = {"clock": clock} if clock is not None else {}
    settings = settings_from_snapshot(snap, interval_s)
    if forecast is not None:
        settings = replace(settings, forecast=forecast)
    scaler = build_scaler(inventory=ScenarioInventory(snap), demand=demand, carbon=carbon or ScenarioCarbon(snap),
                          catalogue_by_key=catalogue(snap), settings=settings,
                          config=config, registry_ttl_s=registry_ttl_s, planner=planner, pods=pods, **extra)
    scaler.refresher.refresh_once()
    return ThreadedScaler(scaler, start_refresher=start_refresher)


def stub_for(port: int) -> tuple[grpc.Channel, pb_grpc.ExternalScalerStub]:
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    return channel, pb_grpc.ExternalScalerStub(channel)


def keda_poll(stub, so_ref, timeout=10):
    """What KEDA does on each poll: GetMetricSpec, GetMetrics with the returned name, IsActive."""
    spec = stub.GetMetricSpec(so_ref, timeout=timeout)
    name = spec.metricSpecs[0].metricName
    metrics = stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=so_ref, metricName=name), timeout=timeout)
    active = stub.IsActive(so_ref, timeout=timeout)
    return spec, metrics, active


def scrape(scaler: ThreadedScaler) -> dict[tuple[str, tuple], float]:
    """The scaler's /metrics over HTTP, as {(name, sorted labels): value}."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    server, _ = scaler.scaler.metrics.serve("127.0.0.1", 0)
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics", timeout=5).read().decode()
    finally:
        server.shutdown()
        server.server_close()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}
