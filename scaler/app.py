"""Assemble a scaler from its parts, and run it on a background thread (tests, benchmark).

`build_scaler` wires registry -> refresher -> core -> servicer -> servers; the ports decide
whether it is the demo (scenario + recorded demand) or live (scenario inventory + Prometheus +
a carbon provider), and the `PlanRunner` where the planner runs (inline, or a worker process).
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable, Mapping

from wattwise.models.model_set import EnergyModelSource, StaticModels
from wattwise.models.ports import CarbonIntensitySource, NodeInventory, ReplicaFpsSource
from wattwise.models.snapshot import Snapshot
from wattwise.models.workload import Workload
from wattwise.scaler.answer import NO_DELETION_COST, Rollout
from wattwise.scaler.cluster_registry import ClusterRegistry
from wattwise.scaler.core import ScalerCore
from wattwise.scaler.demand import DemandPort
from wattwise.scaler.metadata import parse_metadata
from wattwise.scaler.metrics import ScalerMetrics
from wattwise.scaler.planning import PlanRunner
from wattwise.scaler.pod_counts import PodCounts
from wattwise.scaler.refresher import PlanRefresher, RefresherSettings
from wattwise.scaler.registry import Registry
from wattwise.scaler.server import ScalerServer, ServerConfig
from wattwise.scaler.sources import ScenarioCarbon, ScenarioInventory, catalogue, demo_metadata, recorded_demand
from wattwise.scaler.tls import ReloadingCredentials

log = logging.getLogger(__name__)


@dataclass
class Scaler:
    registry: Registry | ClusterRegistry
    refresher: PlanRefresher
    core: ScalerCore
    metrics: ScalerMetrics
    server: ScalerServer


def build_scaler(*, inventory: NodeInventory, demand: DemandPort, carbon: CarbonIntensitySource,
                 catalogue_by_key: Mapping[str, Workload], settings: RefresherSettings,
                 config: ServerConfig = ServerConfig(), tls: ReloadingCredentials | None = None,
                 registry_ttl_s: float = 600.0, clock: Callable[[], float] = time.time,
                 metrics: ScalerMetrics | None = None, planner: PlanRunner | None = None,
                 pods: PodCounts | None = None, models: EnergyModelSource | None = None,
                 registry: Registry | ClusterRegistry | None = None,
                 replica_fps: ReplicaFpsSource | None = None, rollout: Rollout = NO_DELETION_COST) -> Scaler:
    """`planner`: where plans are made (default: inline, on the refresher's thread). `pods`: running
    and ready pods per node, for the make-before-break surge and the re-plan gate's "pods waiting"
    (default: none, the plan's replicas); `rollout`: whether the surge may apply (default: not,
    without pod-deletion costs: `scaler.answer.Rollout`). `replica_fps`: each replica's delivered and dropped FPS,
    to lower the capacity of (workload, class) pairs that drop frames (default: none, capacities
    as modelled; live: `telemetry.prometheus.replica_fps.PrometheusReplicaFps`). A carbon source
    configured with its own `default_g_per_kwh` sets the planner's `carbon_default_g_per_kwh`, so
    one value is counted wherever a reading is missing or untrusted."""
    default_g_per_kwh = getattr(carbon, "default_g_per_kwh", None)
    if isinstance(default_g_per_kwh, (int, float)) and math.isfinite(default_g_per_kwh) and default_g_per_kwh >= 0:
        settings = replace(settings, planner=replace(settings.planner, carbon_default_g_per_kwh=float(default_g_per_kwh)))
    if registry is None:    # the workloads KEDA calls about (else: the cluster's ScaledObjects)
        registry = Registry(clock, ttl_s=registry_ttl_s)
    refresher = PlanRefresher(inventory=inventory, demand=demand, carbon=carbon, registry=registry,
                              catalogue=catalogue_by_key, settings=settings, clock=clock, planner=planner, pods=pods,
                              models=models, replica_fps=replica_fps)
    core = ScalerCore(registry, refresher.state, pods=pods, rollout=rollout)
    metrics = metrics or ScalerMetrics()
    server = ScalerServer(core, refresher, metrics, config, tls)
    return Scaler(registry, refresher, core, metrics, server)


def settings_from_snapshot(snapshot: Snapshot, interval_s: float) -> RefresherSettings:
    return RefresherSettings(interval_s=interval_s, objective=snapshot.objective, planner=snapshot.settings)


def build_demo(snapshot: Snapshot, *, interval_s: float = 15.0, config: ServerConfig = ServerConfig(),
               tls: ReloadingCredentials | None = None, demand: DemandPort | None = None,
               clock: Callable[[], float] = time.time, pods: PodCounts | None = None,
               settings: RefresherSettings | None = None, rollout: Rollout = NO_DELETION_COST) -> Scaler:
    """The bundled scenario with recorded demand; its workloads are registered up front (with the
    metadata `demo_metadata` prints) and planned once, so answers are ready at start. The demo has
    no pods: without `pods` it answers the plan's replicas. `settings`: instead of the scenario's
    with `interval_s`."""
    scaler = build_scaler(inventory=ScenarioInventory(snapshot), demand=demand or recorded_demand(snapshot),
                          carbon=ScenarioCarbon(snapshot), catalogue_by_key=catalogue(snapshot),
                          settings=settings or settings_from_snapshot(snapshot, interval_s), config=config, tls=tls,
                          registry_ttl_s=math.inf, clock=clock, pods=pods, rollout=rollout,
                          models=StaticModels(snapshot.models, origin="the scenario's energy_models"))
    for w in sorted(snapshot.workloads, key=lambda w: w.key):
        scaler.registry.touch(parse_metadata(w.name, w.namespace, demo_metadata(w)))
    scaler.refresher.refresh_once()
    return scaler


class ThreadedScaler:
    """Runs a `Scaler` (servers + refresher) on its own event loop thread."""

    def __init__(self, scaler: Scaler, start_refresher: bool = True):
        self.scaler = scaler
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="wattwise-scaler-loop", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(scaler.server.start(), self._loop).result(30)
        if start_refresher:
            scaler.refresher.start()

    @property
    def grpc_port(self) -> int:
        return self.scaler.server.grpc_port

    @property
    def health_port(self) -> int:
        return self.scaler.server.health_port

    def stop(self, grace_s: float = 1.0) -> None:
        self.scaler.refresher.stop()
        asyncio.run_coroutine_threadsafe(self.scaler.server.stop(grace_s), self._loop).result(grace_s + 30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
