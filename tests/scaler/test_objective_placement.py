"""A ScaledObject may ask for another objective than the default (`objective: carbon`). KEDA counts
that workload's replicas in the carbon plan, so kube-scheduler's extender and the deletion-cost
reconciler must place and order its pods by the same plan: placed by the default (energy) plan,
the carbon plan's count would land on the nodes the energy plan sized for another count."""

from __future__ import annotations

import math

from wattwise.kube.workload_pods import PodRecord
from wattwise.models.snapshot import Objective
from wattwise.scaler.app import build_scaler, settings_from_snapshot
from wattwise.scaler.metadata import parse_metadata
from wattwise.scaler.sources import ScenarioCarbon, ScenarioInventory, catalogue, demo_metadata, recorded_demand
from wattwise.scheduler.deletion_cost import wanted_costs
from wattwise.scheduler.node_cache import StaticNodeCache
from wattwise.scheduler.server import start_extender

from tests.scaler.helpers import snapshot
from tests.scheduler.helpers import args_names, post, recorded_pods

CARBON_KEY = "analytics/footfall-counter"      # the recorded `managed_plain` pod's workload


def scaler_with_one_carbon_workload():
    snap = snapshot()
    scaler = build_scaler(inventory=ScenarioInventory(snap), demand=recorded_demand(snap), carbon=ScenarioCarbon(snap),
                          catalogue_by_key=catalogue(snap), settings=settings_from_snapshot(snap, 15.0),
                          clock=lambda: 1_700_000_000.0, registry_ttl_s=math.inf)
    for w in snap.workloads:
        md = demo_metadata(w) | ({"objective": "carbon"} if w.key == CARBON_KEY else {})
        scaler.registry.touch(parse_metadata(w.name, w.namespace, md))
    state = scaler.refresher.refresh_once()
    return scaler, state


def test_the_extender_places_a_workload_by_the_plan_of_its_own_objective():
    scaler, state = scaler_with_one_carbon_workload()
    carbon_nodes = dict(state.views[Objective("carbon")].plan.workloads[CARBON_KEY].by_node)
    energy_nodes = dict(state.default_view.plan.workloads[CARBON_KEY].by_node)
    assert carbon_nodes and set(carbon_nodes).isdisjoint(energy_nodes)    # the two plans differ here
    names = [n.name for n in state.default_view.snapshot.nodes]
    handle = start_extender(scaler.refresher, "127.0.0.1", 0, StaticNodeCache.from_snapshot(state.default_view.snapshot))
    try:
        status, scores = post(f"{handle.url}/prioritize", args_names(recorded_pods()["managed_plain"], names))
    finally:
        handle.stop(2.0)
    assert status == 200
    by_node = {s["Host"]: s["Score"] for s in scores}
    best = max(by_node.values())
    assert {n for n, v in by_node.items() if v == best} <= set(carbon_nodes)
    assert all(by_node[n] < best for n in energy_nodes)


def test_deletion_costs_follow_the_plan_of_the_workloads_objective():
    _, state = scaler_with_one_carbon_workload()
    carbon_nodes = dict(state.views[Objective("carbon")].plan.workloads[CARBON_KEY].by_node)
    energy_node = next(iter(state.default_view.plan.workloads[CARBON_KEY].by_node))
    planned_node = next(iter(carbon_nodes))
    pods = [PodRecord("analytics", "a", CARBON_KEY, planned_node, True, None, "1"),
            PodRecord("analytics", "b", CARBON_KEY, energy_node, True, None, "1")]
    costs = {pod.name: int(value) for pod, value in wanted_costs(state.served_view, pods)}
    assert costs["a"] == carbon_nodes[planned_node] and costs["b"] < 0    # off the carbon plan: deleted first


def test_get_plan_shows_each_workload_as_its_own_objectives_plan_has_it():
    from wattwise.plan_report import plan_report

    _, state = scaler_with_one_carbon_workload()
    doc = plan_report(state.served_view)
    entries = {w["key"]: w for w in doc["workloads"]}
    carbon_wp = state.views[Objective("carbon")].plan.workloads[CARBON_KEY]
    assert entries[CARBON_KEY]["objective"] == "carbon"
    assert {p["node"]: p["replicas"] for p in entries[CARBON_KEY]["placements"]} == dict(carbon_wp.by_node)
    assert entries[CARBON_KEY]["asked_replicas"] == carbon_wp.asked_replicas
    other = next(k for k in entries if k != CARBON_KEY)
    assert entries[other]["objective"] == "energy" and doc["objective"] == "energy"
