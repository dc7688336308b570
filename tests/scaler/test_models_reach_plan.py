"""Fitted energy models reach every plan the scaler serves: the scenario's in the demo, a models
directory live, and a new version of the directory re-plans at once."""

from __future__ import annotations

from dataclasses import replace

from wattwise.models import persistence
from wattwise.models.planner import plan
from wattwise.scaler.app import build_demo, build_scaler, settings_from_snapshot
from wattwise.scaler.sources import ScenarioCarbon, ScenarioInventory, catalogue, demo_metadata, recorded_demand
from wattwise.scaler.metadata import parse_metadata
from wattwise.telemetry.model_dir import ModelDirectory

from tests.scaler.helpers import NEVER, snapshot


def slower_models(snap, factor: float):
    """A measured model per (workload, class) the priors allow, at `factor` of the prior's capacity."""
    out = {}
    for w in snap.workloads:
        for cls in snap.node_classes.values():
            prior = snap.model(w, cls)
            if prior is not None:
                out[(w.key, cls.name)] = replace(prior, capacity_fps=prior.capacity_fps * factor, prior=False,
                                                 source="fitted", n_samples=500)
    return out


def replicas(view) -> dict[str, int]:
    return {k: wp.replicas for k, wp in view.plan.workloads.items()}


def test_demo_plans_with_the_scenarios_models_like_wattwise_plan():
    snap = snapshot()
    measured = snap.with_models(slower_models(snap, 0.5))
    expected = {k: wp.replicas for k, wp in plan(measured)[0].workloads.items()}
    assert expected != {k: wp.replicas for k, wp in plan(snap)[0].workloads.items()}   # the models matter
    demo = build_demo(measured, interval_s=NEVER)
    assert replicas(demo.refresher.current()) == expected


def test_live_models_directory_is_used_and_a_new_version_replans(tmp_path):
    snap = snapshot()
    half, third = slower_models(snap, 0.5), slower_models(snap, 0.33)
    persistence.save(tmp_path / "energy-models.json", list(half.values()))
    clock = [1_700_000_000.0]
    directory = ModelDirectory(tmp_path, check_every_s=0.0)
    scaler = build_scaler(inventory=ScenarioInventory(snap), demand=recorded_demand(snap), carbon=ScenarioCarbon(snap),
                          catalogue_by_key=catalogue(snap), settings=settings_from_snapshot(snap, 15.0),
                          clock=lambda: clock[0], models=directory)
    for w in snap.workloads:
        scaler.registry.touch(parse_metadata(w.name, w.namespace, demo_metadata(w)))
    state = scaler.refresher.refresh_once()
    view = state.default_view
    assert view.snapshot.models == half
    assert replicas(view) == {k: wp.replicas for k, wp in plan(replace(view.snapshot))[0].workloads.items()}
    before = replicas(view)

    clock[0] += 15.0
    scaler.refresher.refresh_once()
    assert scaler.refresher.last_decision[0] is False   # nothing changed: no new plan

    persistence.save(tmp_path / "energy-models.json", list(third.values()))
    clock[0] += 15.0
    state = scaler.refresher.refresh_once()
    assert scaler.refresher.last_decision == (True, "models-changed")
    assert state.default_view.snapshot.models == third
    assert sum(replicas(state.default_view).values()) > sum(before.values())
