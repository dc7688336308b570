"""The `headroom` metadata key reaches the planner as `Workload.headroom`, on the true demand.

The door decides nothing: the plan's demand is what the ScaledObject measures, the headroom is the
planner's, and its reasons and capacity figures say so.
"""

from __future__ import annotations

from tests.scaler.helpers import keda_poll, ref
from wattwise.scaler.metadata import parse_metadata
from wattwise.scaler.workloads import build_workload
from wattwise.models.workload import Demand, Workload


def _planned(demo, stub, r, key):
    stub.GetMetricSpec(r, timeout=5)
    demo.scaler.refresher.refresh_once()
    _, metrics, _ = keda_poll(stub, r)
    view = demo.scaler.refresher.current()
    workload = next(w for w in view.snapshot.workloads if w.key == key)
    return metrics.metricValues[0].metricValueFloat, view.plan.workloads[key], workload


def test_metadata_headroom_is_the_workloads_headroom_on_true_demand(demo, stub):
    r = ref("hall", "shop", workload="hall-cams", streams="10", fpsPerStream="15", headroom="0.5")
    value, wp, workload = _planned(demo, stub, r, "shop/hall-cams")
    assert workload.headroom == 0.5
    assert workload.demand_fps == 150.0                      # 10 streams x 15 fps, not inflated
    assert wp.demand_fps == 150.0 and wp.observed_demand_fps == 150.0
    assert wp.capacity_fps >= 150.0 * 1.5 - 1e-6             # the planner applied the headroom
    assert any("for 150.0 fps demanded (+50% headroom)" in reason for reason in wp.reasons), wp.reasons
    assert value == wp.replicas


def test_without_the_key_the_scenario_headroom_applies(demo, stub):
    r = ref("gate", "shop", workload="gate-cams", streams="10", fpsPerStream="15")
    _, wp, workload = _planned(demo, stub, r, "shop/gate-cams")
    assert workload.headroom is None
    assert demo.scaler.refresher.current().snapshot.settings.headroom == 0.05   # metro-retail.yaml's
    assert wp.demand_fps == 150.0
    assert any("(+5% headroom)" in reason for reason in wp.reasons), wp.reasons


def test_build_workload_takes_metadata_headroom_over_the_catalogues():
    base = Workload(name="cams", namespace="shop", headroom=0.3)
    with_key = parse_metadata("so", "shop", {"workload": "cams", "streams": "1", "headroom": "0.2"})
    without = parse_metadata("so", "shop", {"workload": "cams", "streams": "1"})
    assert build_workload(with_key, base, Demand(total_fps=15.0)).headroom == 0.2
    assert build_workload(without, base, Demand(total_fps=15.0)).headroom == 0.3
    assert build_workload(without, None, Demand(total_fps=15.0)).headroom is None
    assert build_workload(with_key, base, Demand(total_fps=15.0)).demand_fps == 15.0
