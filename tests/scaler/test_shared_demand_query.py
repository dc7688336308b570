"""Two ScaledObjects may share one demand query and read it in different units: the value is
judged plausible against each one's own unit (`queryUnit`), not the first reader's."""

from __future__ import annotations

import math

from wattwise.scaler.app import build_scaler, settings_from_snapshot
from wattwise.scaler.metadata import parse_metadata
from wattwise.scaler.sources import RecordedDemand, ScenarioCarbon, ScenarioInventory, catalogue

from tests.scaler.helpers import snapshot

T0 = 1_700_000_000.0


def plan_for(value: float, order: tuple[str, str]):
    snap = snapshot()
    settings = settings_from_snapshot(snap, 15.0)
    fps_reader, streams_reader = snap.workloads[0], snap.workloads[1]
    scaler = build_scaler(inventory=ScenarioInventory(snap), demand=RecordedDemand({"shared": [(0.0, value)]}),
                          carbon=ScenarioCarbon(snap), catalogue_by_key=catalogue(snap), settings=settings,
                          clock=lambda: T0, registry_ttl_s=math.inf)
    metadata = {"fps": (fps_reader, {"workload": fps_reader.name, "query": "shared", "queryUnit": "fps"}),
                "streams": (streams_reader, {"workload": streams_reader.name, "query": "shared", "queryUnit": "streams"})}
    for unit in order:
        w, md = metadata[unit]
        scaler.registry.touch(parse_metadata(w.name, w.namespace, md))
    plan = scaler.refresher.refresh_once().default_view.plan
    return plan.workloads[fps_reader.key], plan.workloads[streams_reader.key]


def test_a_value_plausible_as_fps_is_absurd_as_streams_whoever_reads_it_first():
    settings = settings_from_snapshot(snapshot(), 15.0)
    value = 1.5 * settings.max_streams            # below max_fps, above max_streams
    assert value < settings.max_fps
    for order in (("fps", "streams"), ("streams", "fps")):
        as_fps, as_streams = plan_for(value, order)
        assert not as_fps.held, order
        assert as_streams.held and "implausible value" in " ".join(as_streams.reasons), order
