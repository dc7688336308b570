"""Over a real gRPC channel: when the qualifying nodes are full, GetMetrics asks for the replicas the
demand needs, not only those that fit (`models/unplaced.py`): the rest wait Pending for a node
autoscaler, and the plan view says so."""

from __future__ import annotations

from tests.scaler.helpers import SettableDemand, keda_poll, ref, start_live, stub_for
from tests.scaler.test_replan_gate import T0, Clock

QUERY = 'sum(streams{w="gate"})'
KEY = "shop/gate-cams"


def test_a_full_cluster_asks_for_the_replicas_that_do_not_fit():
    demand = SettableDemand({QUERY: 20})
    clock = Clock(T0)
    scaler = start_live(demand, clock=clock, start_refresher=False, interval_s=15.0, registry_ttl_s=1e9)
    channel, stub = stub_for(scaler.grpc_port)
    so = ref("gate", "shop", workload="gate-cams", query=QUERY)
    try:
        stub.GetMetricSpec(so, timeout=5)
        scaler.scaler.refresher.refresh_once()
        wp = scaler.scaler.refresher.state().default_view.plan.workloads[KEY]
        assert wp.unplaced_replicas == 0
        assert keda_poll(stub, so)[1].metricValues[0].metricValue == wp.replicas

        demand.set(QUERY, 20_000)                      # far beyond what every qualifying node can hold
        clock.now_s += 60.0                            # past the re-plan gate's minimum interval
        scaler.scaler.refresher.refresh_once()
        wp = scaler.scaler.refresher.state().default_view.plan.workloads[KEY]
        assert not wp.feasible and wp.unplaced_replicas > 0
        value = keda_poll(stub, so)[1].metricValues[0]
        assert value.metricValue == wp.replicas + wp.unplaced_replicas == wp.asked_replicas
        assert any("wait Pending for a node autoscaler" in r for r in wp.reasons)
        metrics = scaler.scaler.metrics.registry
        assert metrics.get_sample_value("wattwise_unplaced_replicas", {"workload": KEY}) == wp.unplaced_replicas
        assert metrics.get_sample_value("wattwise_planned_replicas",
                                        {"workload": KEY, "objective": "energy"}) == wp.asked_replicas
    finally:
        channel.close()
        scaler.stop()
