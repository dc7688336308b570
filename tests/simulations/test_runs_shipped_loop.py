"""The simulator's `wattwise` decides what `wattwise serve` would: an hour of the bundled scenario is
simulated while every step records what the refresher's ports would have read; the same reads
are then replayed, through port objects, into the scaler's own `PlanRefresher`, which must
re-plan at the same steps, for the same reasons, to the same plans."""

from __future__ import annotations

import math
import pytest

from wattwise.models.model_set import StaticModels
from wattwise.models.ports import CarbonReading
from wattwise.models.trigger_metadata import parse_metadata
from wattwise.scaler.demand import RecordedDemand
from wattwise.scaler.pod_counts import StaticPodCounts
from wattwise.scaler.refresher import PlanRefresher, RefresherSettings
from wattwise.scaler.registry import Registry
from wattwise.simulations.policies.wattwise_policy import WattwisePolicy
from wattwise.simulations.run import simulate

from .conftest import SCENARIO

STEP_S = 15.0


class RecordsReads(WattwisePolicy):
    """The wattwise policy, keeping each step's reads (pods materialised) and its decision."""

    def start(self, ctx):
        self.steps = []
        self.scenario_snapshot = ctx.cm.snapshot    # the scenario as simulated: GPU nodes tainted, GPU pods tolerating it
        super().start(ctx)

    def refresh(self, ctx, force=False):
        reads = self._read(ctx)
        keys = [w.key for w in reads.workloads]
        pods = {k: reads.pods(k) for k in keys}
        unbound = {k: reads.unbound(k) for k in keys}
        replans = self.cycle.replans
        super().refresh(ctx, force)
        plan = self.plan if self.cycle.replans > replans else None
        self.steps.append((reads, pods, unbound, self.last_decision, plan))


class ReplayInventory:
    def __init__(self):
        self.classes, self.now = {}, []

    def node_classes(self):
        return dict(self.classes)

    def nodes(self):
        return list(self.now)


class ReplayCarbon:
    def __init__(self):
        self.readings: dict[str, CarbonReading] = {}

    def intensity(self, zone, now_s):
        return self.readings.get(zone)


def query(key: str) -> str:
    return f'sum(pipeline_offered_fps{{workload="{key}"}})'


@pytest.fixture(scope="module")
def recorded():
    kept = {}

    def factory(name, scenario, timing):
        kept[name] = RecordsReads(scenario, timing)
        return kept[name]

    simulate(SCENARIO, ["wattwise"], days=1 / 24, step_s=STEP_S, seed=4, policy_factory=factory)
    return kept["wattwise"]


def test_the_scalers_refresher_fed_the_same_reads_decides_the_same(recorded):
    snapshot = recorded.scenario_snapshot
    steps = recorded.steps
    assert len(steps) > 200 and sum(1 for s in steps if s[4] is not None) >= 5   # it did re-plan along the way

    clock = {"now": 0.0}
    inventory, carbon, pods = ReplayInventory(), ReplayCarbon(), StaticPodCounts()
    series: dict[str, list] = {query(w.key): [] for w in snapshot.workloads}
    for reads, *_ in steps:
        for w in reads.workloads:
            series[query(w.key)].append((reads.now_s, w.demand.total_fps))
    registry = Registry(lambda: clock["now"], ttl_s=math.inf)
    refresher = PlanRefresher(
        inventory=inventory, demand=RecordedDemand(series), carbon=carbon, registry=registry,
        catalogue={w.key: w for w in snapshot.workloads}, clock=lambda: clock["now"], pods=pods,
        models=StaticModels(snapshot.models),
        settings=RefresherSettings(interval_s=STEP_S, objective=snapshot.objective, planner=snapshot.settings,
                                   replan=recorded.timing.replan))
    for w in snapshot.workloads:
        registry.touch(parse_metadata(w.name, w.namespace, {"workload": w.name, "query": query(w.key),
                                                            "queryUnit": "fps"}))
    inventory.classes = dict(snapshot.node_classes)
    for k, (reads, running, unbound, decision, plan) in enumerate(steps):
        clock["now"] = reads.now_s
        inventory.now = list(reads.nodes)
        carbon.readings = dict(reads.carbon)
        for key, counts in running.items():
            pods.set(key, *counts, unbound=unbound[key])
        refresher.refresh_once()
        assert refresher.last_decision == decision, (k, reads.now_s)
        if plan is not None:
            live = refresher.current().plan
            assert {key: wp.by_node for key, wp in live.workloads.items()} == \
                {key: wp.by_node for key, wp in plan.workloads.items()}, (k, reads.now_s)
            assert live.active_nodes == plan.active_nodes
    assert refresher.replans == recorded.replans and refresher.replan_reasons == recorded.replan_reasons


def test_the_recorded_reads_are_what_a_cluster_would_show(recorded):
    """Nodes in name order with their power state, workloads in key order with demand only
    (the forecast is the loop's to add), carbon per zone at the step's time."""
    reads = recorded.steps[-1][0]
    assert [n.name for n in reads.nodes] == sorted(n.name for n in reads.nodes)
    assert [w.key for w in reads.workloads] == sorted(w.key for w in reads.workloads)
    assert all(w.demand.expected_fps is None and w.demand.trustworthy for w in reads.workloads)
    assert all(r.at_s == reads.now_s for r in reads.carbon.values())
    assert any(not n.powered_on for s in recorded.steps for n in s[0].nodes)   # nodes were suspended


def test_nodes_come_and_go_only_through_the_cluster_autoscaler(recorded):
    """WattWise ships no node actuator: in the simulator as in a cluster, a node powers down only
    when cluster-autoscaler removes it, once unneeded for its 10 minutes (every node starts on)."""
    off_at = [reads.now_s for reads, *_ in recorded.steps if any(not n.powered_on for n in reads.nodes)]
    assert off_at and off_at[0] >= recorded.autoscaler.settings.unneeded_s
    most_off = max(sum(not n.powered_on for n in reads.nodes) for reads, *_ in recorded.steps)
    assert 0 < most_off <= recorded.stats()["node_removals"]
