"""Ports backed by a scenario file: node inventory, carbon per zone, the workload catalogue, and
the demo's recorded demand with the trigger metadata that selects each bundled workload."""

from __future__ import annotations

from wattwise.models.cluster import Node, NodeClass
from wattwise.models.ports import CarbonReading
from wattwise.models.snapshot import Snapshot
from wattwise.models.workload import Workload
from wattwise.scaler.demand import RecordedDemand

STREAMS_METRIC = "wattwise_active_streams"


class ScenarioInventory:
    """`NodeInventory` from a scenario's nodes (the demo, or a cluster described by hand)."""

    def __init__(self, snapshot: Snapshot):
        self._classes = dict(snapshot.node_classes)
        self._nodes = list(snapshot.nodes)

    def node_classes(self) -> dict[str, NodeClass]:
        return dict(self._classes)

    def nodes(self) -> list[Node]:
        return list(self._nodes)

    def describe(self) -> str:
        return f"{len(self._nodes)} nodes of a scenario file"


class ScenarioCarbon:
    """`CarbonIntensitySource` serving the scenario's fixed intensity per zone."""

    def __init__(self, snapshot: Snapshot):
        self._readings = dict(snapshot.carbon)
        self._default_g_per_kwh = snapshot.settings.carbon_default_g_per_kwh

    def intensity(self, zone: str, now_s: float) -> CarbonReading:
        r = self._readings.get(zone)
        if r is None:
            return CarbonReading(zone=zone, g_per_kwh=self._default_g_per_kwh, at_s=now_s, source="scenario",
                                 status="default",
                                 error=f"zone {zone!r} has no carbon intensity in the scenario")
        return CarbonReading(zone=zone, g_per_kwh=r.g_per_kwh, at_s=now_s, source=r.source, signal=r.signal)


def catalogue(snapshot: Snapshot) -> dict[str, Workload]:
    return {w.key: w for w in snapshot.workloads}


def demand_query(w: Workload) -> str:
    """The PromQL a ScaledObject would use for the workload's active camera streams."""
    return f'sum({STREAMS_METRIC}{{namespace="{w.namespace}",workload="{w.name}"}})'


def demo_metadata(w: Workload) -> dict[str, str]:
    """Trigger metadata that selects a bundled workload (the rest comes from the catalogue)."""
    md = {"workload": w.name, "query": demand_query(w)}
    if w.demand.streams is None:
        md["queryUnit"] = "fps"
    return md


def recorded_demand(snapshot: Snapshot) -> RecordedDemand:
    """The scenario's demand as recorded query answers (one point, held)."""
    series = {}
    for w in snapshot.workloads:
        value = w.demand.streams if w.demand.streams is not None else (w.demand.total_fps or 0.0)
        series[demand_query(w)] = [(0.0, float(value))]
    return RecordedDemand(series)
