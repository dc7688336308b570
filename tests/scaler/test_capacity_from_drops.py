"""Capacity learned from drops in the live loop (issue 14): replicas that drop frames while the plan
says their capacity suffices lower their pair's capacity within one refresh; GET /plan shows it; a
correction never raises a capacity; a new model of that pair (a refit) or its expiry clear it, a new
model of another pair does not."""

from __future__ import annotations

import json
import math
import urllib.request
from dataclasses import replace

import pytest
from hypothesis import given, settings, strategies as st

from wattwise.models.capacity_correction import ReplicaRate
from wattwise.models.model_set import ModelSet
from wattwise.models.ports import ReplicaSample
from wattwise.plan_report import plan_report
from wattwise.scaler.app import build_scaler, settings_from_snapshot
from wattwise.scaler.metadata import parse_metadata
from wattwise.scaler.replica_fps import CapacityCorrections, KeepSettings, StaticReplicaFps
from wattwise.scaler.sources import ScenarioCarbon, ScenarioInventory, catalogue, demo_metadata, recorded_demand
from wattwise.scheduler.node_cache import StaticNodeCache
from wattwise.scheduler.server import start_extender

from tests.scaler.helpers import snapshot

KEY, CLS = "retail/checkout-cams", "spr-amx-tdx"
T0 = 1_700_000_000.0


class SettableModels:
    """An `EnergyModelSource` whose set a test swaps (a refit writing new models)."""

    def __init__(self, by_pair=None):
        self.set = ModelSet(dict(by_pair or {}), {}, 1, "test")

    def refit(self, by_pair) -> None:
        self.set = ModelSet(dict(by_pair), {}, self.set.version + 1, "test")

    def current(self) -> ModelSet:
        return self.set


def live(fps: StaticReplicaFps, models=None, **capacity):
    snap = snapshot()
    clock = [T0]
    settings = settings_from_snapshot(snap, 15.0)
    if capacity:
        settings = replace(settings, capacity=KeepSettings(**capacity))
    scaler = build_scaler(inventory=ScenarioInventory(snap), demand=recorded_demand(snap), carbon=ScenarioCarbon(snap),
                          catalogue_by_key=catalogue(snap), settings=settings, clock=lambda: clock[0],
                          models=models, replica_fps=fps, registry_ttl_s=math.inf)
    for w in snap.workloads:
        scaler.registry.touch(parse_metadata(w.name, w.namespace, demo_metadata(w)))
    return scaler, clock


def refresh(scaler, clock, step_s: float = 15.0):
    clock[0] += step_s
    return scaler.refresher.refresh_once().default_view


def capacity_of(view, key=KEY, cls=CLS) -> float:
    snap = view.snapshot
    return snap.model(next(w for w in snap.workloads if w.key == key), snap.node_classes[cls]).capacity_fps


def dropping(view, delivered_fps: float, drop_fps: float = 5.0, key=KEY, cls=CLS) -> list[ReplicaSample]:
    """One sample per replica the plan put on class `cls`."""
    wp = view.plan.workloads[key]
    nodes = {n.name: n.node_class for n in view.snapshot.nodes}
    return [ReplicaSample(key, node, delivered_fps, drop_fps, pod=f"retail/cams-{node}-{i}")
            for node, count in sorted(wp.by_node.items()) if nodes[node] == cls for i in range(count)]


def model_entry(doc, key=KEY, cls=CLS) -> dict:
    return next(m for m in doc["inputs"]["models"] if m["workload"] == key and m["node_class"] == cls)


def test_drops_below_the_modelled_capacity_lower_it_and_plan_more_replicas_at_once():
    fps = StaticReplicaFps()
    scaler, clock = live(fps)
    first = scaler.refresher.refresh_once().default_view
    modelled = capacity_of(first)
    before = first.plan.workloads[KEY].replicas
    assert "corrected_from_fps" not in model_entry(plan_report(first))

    fps.set(dropping(first, 0.6 * modelled))
    view = refresh(scaler, clock)
    assert scaler.refresher.last_decision == (True, "capacity-corrected")
    assert capacity_of(view) == pytest.approx(0.95 * 0.6 * modelled)
    assert view.plan.workloads[KEY].replicas > before
    assert not view.degraded                                  # a correction is learning, not a fault

    other = next(c for c in view.snapshot.node_classes if c != CLS)
    assert capacity_of(view, cls=other) == capacity_of(first, cls=other)   # only the dropping pair
    entry = model_entry(plan_report(view))
    assert entry["capacity_fps"] == round(0.95 * 0.6 * modelled, 3)
    assert entry["corrected_from_fps"] == round(modelled, 3) and entry["source"].endswith("+drops")
    assert "lowered from" in entry["correction_reason"] and entry["corrected_at"].endswith("Z")

    # the same drops next refresh change nothing: no new plan
    view = refresh(scaler, clock)
    assert scaler.refresher.last_decision[0] is False and capacity_of(view) == pytest.approx(0.57 * modelled)


def test_plan_endpoint_shows_the_correction():
    fps = StaticReplicaFps()
    scaler, clock = live(fps)
    first = scaler.refresher.refresh_once().default_view
    fps.set(dropping(first, 0.5 * capacity_of(first)))
    refresh(scaler, clock)
    handle = start_extender(scaler.refresher, "127.0.0.1", 0, StaticNodeCache.from_snapshot(first.snapshot))
    try:
        with urllib.request.urlopen(f"{handle.url}/plan", timeout=10) as resp:
            doc = json.load(resp)
    finally:
        handle.stop(2.0)
    entry = model_entry(doc)
    assert entry["corrected_from_fps"] == round(capacity_of(first), 3)
    assert entry["capacity_fps"] == round(0.95 * 0.5 * capacity_of(first), 3)
    assert sum("corrected_from_fps" in m for m in doc["inputs"]["models"]) == 1


def test_a_correction_never_raises_a_capacity():
    fps = StaticReplicaFps()
    scaler, clock = live(fps)
    first = scaler.refresher.refresh_once().default_view
    modelled = capacity_of(first)
    for delivered in (1.5, 1.0, 0.96):                         # dropping at or near the model's: overloaded
        fps.set(dropping(first, delivered * modelled))          # (asked for more than one replica gives)
        view = refresh(scaler, clock)
        assert capacity_of(view) == modelled and scaler.refresher.last_decision[0] is False

    fps.set(dropping(first, 0.5 * modelled))
    view = refresh(scaler, clock)
    assert capacity_of(view) == pytest.approx(0.475 * modelled)
    for delivered in (0.8, 2.0, 0.0):                          # faster drops, a stall: nothing rises
        fps.set(dropping(view, delivered * modelled))
        clock[0] += 600.0                                      # well past settling
        view = refresh(scaler, clock)
        assert capacity_of(view) == pytest.approx(0.475 * modelled)
    fps.set(dropping(view, 0.3 * modelled))                    # slower still: lowered again
    view = refresh(scaler, clock)
    assert capacity_of(view) == pytest.approx(0.285 * modelled)
    assert scaler.refresher.last_decision == (True, "capacity-corrected")


def test_a_new_model_version_clears_the_correction():
    snap = snapshot()
    w = next(w for w in snap.workloads if w.key == KEY)
    prior = snap.model(w, snap.node_classes[CLS])
    fitted = replace(prior, workload=KEY, capacity_fps=prior.capacity_fps * 0.8, prior=False, source="fitted")
    models = SettableModels({(KEY, CLS): fitted})
    fps = StaticReplicaFps()
    scaler, clock = live(fps, models)
    first = scaler.refresher.refresh_once().default_view
    assert capacity_of(first) == pytest.approx(fitted.capacity_fps)
    fps.set(dropping(first, 0.5 * fitted.capacity_fps))
    view = refresh(scaler, clock)
    assert capacity_of(view) == pytest.approx(0.475 * fitted.capacity_fps)
    assert model_entry(plan_report(view))["kind"] == "fitted"

    refit = replace(fitted, capacity_fps=0.6 * fitted.capacity_fps, source="refit")
    models.refit({(KEY, CLS): refit})
    fps.set([])                                               # replicas no longer drop
    view = refresh(scaler, clock)
    assert scaler.refresher.last_decision == (True, "models-changed")
    assert capacity_of(view) == pytest.approx(refit.capacity_fps)
    entry = model_entry(plan_report(view))
    assert "corrected_from_fps" not in entry and entry["source"] == "refit"
    assert view.inputs["capacity_corrections"] == []


def test_a_new_model_of_another_pair_keeps_the_correction():
    """A refit that accepts another pair (a new `ModelSet.version`) must not send the corrected pair
    back to a capacity it was seen not to reach."""
    snap = snapshot()
    w = next(w for w in snap.workloads if w.key == KEY)
    other = next(c for c in snap.node_classes if c != CLS)
    fitted = {cls: replace(snap.model(w, snap.node_classes[cls]), workload=KEY, prior=False, source="fitted")
              for cls in (CLS, other)}
    models = SettableModels({(KEY, cls): m for cls, m in fitted.items()})
    fps = StaticReplicaFps()
    scaler, clock = live(fps, models)
    first = scaler.refresher.refresh_once().default_view
    fps.set(dropping(first, 0.5 * fitted[CLS].capacity_fps))
    view = refresh(scaler, clock)
    assert capacity_of(view) == pytest.approx(0.475 * fitted[CLS].capacity_fps)

    models.refit({(KEY, CLS): fitted[CLS],
                  (KEY, other): replace(fitted[other], capacity_fps=1.1 * fitted[other].capacity_fps, source="refit")})
    fps.set([])                                               # corrected: its replicas no longer drop
    view = refresh(scaler, clock)
    assert scaler.refresher.last_decision == (True, "models-changed")
    assert capacity_of(view) == pytest.approx(0.475 * fitted[CLS].capacity_fps)   # still corrected
    assert capacity_of(view, cls=other) == pytest.approx(1.1 * fitted[other].capacity_fps)
    assert model_entry(plan_report(view))["corrected_from_fps"] == round(fitted[CLS].capacity_fps, 3)


def test_a_correction_expires_and_the_plan_returns_to_the_model():
    fps = StaticReplicaFps()
    scaler, clock = live(fps, expiry_s=3600.0)
    first = scaler.refresher.refresh_once().default_view
    fps.set(dropping(first, 0.5 * capacity_of(first)))
    refresh(scaler, clock)
    fps.set([])
    view = refresh(scaler, clock, 3000.0)
    assert capacity_of(view) < capacity_of(first)
    view = refresh(scaler, clock, 600.0)
    assert scaler.refresher.last_decision == (True, "capacity-correction-expired")
    assert capacity_of(view) == capacity_of(first)


def test_a_failing_source_is_reported_lowers_nothing_and_keeps_what_is_held():
    fps = StaticReplicaFps()
    scaler, clock = live(fps)
    first = scaler.refresher.refresh_once().default_view
    fps.error = ConnectionError("Prometheus at http://prom:9090: request failed (Connection refused)")
    view = refresh(scaler, clock)
    assert view.degraded and any("replica fps unavailable" in r and "Connection refused" in r
                                 for r in view.degraded_reasons)
    assert capacity_of(view) == capacity_of(first)

    fps.error = None
    fps.set(dropping(first, 0.5 * capacity_of(first)))
    view = refresh(scaler, clock)
    assert not view.degraded and capacity_of(view) == pytest.approx(0.475 * capacity_of(first))
    fps.error = ConnectionError("down again")
    view = refresh(scaler, clock)
    assert capacity_of(view) == pytest.approx(0.475 * capacity_of(first))   # held, not dropped


def test_replicas_on_unknown_nodes_or_of_other_workloads_are_ignored():
    fps = StaticReplicaFps([ReplicaSample(KEY, "gone-node", 1.0, 5.0),
                            ReplicaSample("other/unregistered", "de-spr-1", 1.0, 5.0)])
    scaler, clock = live(fps)
    first = scaler.refresher.refresh_once().default_view
    assert first.inputs["capacity_corrections"] == [] and not first.degraded


PAIR = (KEY, CLS)


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(st.tuples(st.floats(0.0, 120.0), st.floats(0.0, 30.0), st.floats(0.0, 400.0),
                                st.booleans()), max_size=15))
def test_held_capacity_only_falls_until_the_pair_s_model_changes_or_it_expires(steps):
    book = CapacityCorrections(KeepSettings(expiry_s=1e9))
    modelled, held, now_s = 50.0, 50.0, 0.0
    for delivered, drop, dt, refit in steps:
        now_s += dt
        if refit:                           # the pair's model changed: what was held is gone
            modelled = 90.0 - modelled      # 50 <-> 40
            held = modelled
        out = book.update(now_s, {PAIR: modelled}, [ReplicaRate(KEY, CLS, delivered, drop)])
        capacity = out[PAIR].capacity_fps if PAIR in out else modelled
        assert 0 < capacity <= held + 1e-9 and capacity <= modelled
        held = capacity
