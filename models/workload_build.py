"""Turn a ScaledObject's request into the `Workload` the planner sees.

The base workload (the scenario's catalogue entry, or what `cluster_workloads` read from the
ScaledObject's scale target) supplies what metadata leaves out: model type, footprint, TEE
requirement, placement rules, SLA and replica bounds. Metadata keys override it.

Per-ScaledObject headroom: the metadata's `headroom` becomes `Workload.headroom`, which the
planner applies on top of the true demand (overriding `PlannerSettings.headroom` for that
workload); without the key the catalogue's headroom, else the planner's default, applies.
"""

from __future__ import annotations

from dataclasses import replace

from wattwise.models.resources import Resources
from wattwise.models.snapshot import Objective
from wattwise.models.trigger_metadata import ScalerRequest
from wattwise.models.network import Network, Reach
from wattwise.models.workload import Demand, Sla, Workload


def fps_per_stream(request: ScalerRequest, base: Workload | None) -> float:
    if request.fps_per_stream is not None:
        return request.fps_per_stream
    return base.sla.fps_per_stream if base is not None else Sla().fps_per_stream


def demand_fps(request: ScalerRequest, base: Workload | None, value: float) -> float:
    """Frames per second the workload must serve, from a query value or stream count."""
    if request.demand.query is not None and request.demand.unit == "fps":
        return value
    return value * fps_per_stream(request, base)


def objective_of(request: ScalerRequest, default: Objective) -> Objective:
    if request.objective is None:
        return default
    return Objective(request.objective, request.carbon_weight)


def build_workload(request: ScalerRequest, base: Workload | None, demand: Demand,
                   network: Network | None = None) -> Workload:
    """The workload a ScaledObject's trigger asks for, over the catalogue's `base` where there is
    one. With `originZone`, only zones the `network` reaches from there (with their round trip
    counted against the latency bound) may serve it; without a network, only that zone."""
    w = base if base is not None else Workload(name=request.workload_name, namespace=request.workload_namespace)
    footprint = Resources(request.cpu_m if request.cpu_m is not None else w.footprint.cpu_m,
                          request.memory_mib if request.memory_mib is not None else w.footprint.memory_mib,
                          request.gpu if request.gpu is not None else w.footprint.gpu)
    min_r = request.min_replicas if request.min_replicas is not None else w.min_replicas
    max_r = request.max_replicas if request.max_replicas is not None else max(w.max_replicas, min_r)
    return replace(
        w, name=request.workload_name, namespace=request.workload_namespace,
        model_type=request.model or w.model_type,
        sla=Sla(fps_per_stream(request, base), request.latency_ms or w.sla.latency_ms), demand=demand,
        confidentiality=request.tee if request.tee is not None else w.confidentiality,
        footprint=footprint, min_replicas=min(min_r, max_r), max_replicas=max_r,
        headroom=request.headroom if request.headroom is not None else w.headroom,
        reach=(network.reach(request.origin_zone) if network is not None else Reach(request.origin_zone))
        if request.origin_zone else w.reach)
