"""Two scaler replicas (KEDA round-robins across them) give the same answers for the same inputs."""

from __future__ import annotations

from tests.scaler.helpers import SettableDemand, keda_poll, ref, start_live, stub_for
from wattwise.scaler.pod_counts import StaticPodCounts

T0 = 1_700_000_000.0


def test_two_replicas_answer_alike_even_when_refreshed_at_different_moments():
    queries = {f'sum(streams{{w="{i}"}})': float(v) for i, v in enumerate((48, 60, 0, 7, 130))}
    refs = [ref(f"so-{i}", "shop", workload=f"cams-{i}", query=q, objective=("carbon" if i % 2 else "energy"))
            for i, q in enumerate(queries)]
    replicas = []
    for offset_s in (1.0, 13.5):      # same 15 s plan interval, different wall-clock moments
        def clock(offset_s=offset_s):
            return T0 + offset_s
        replicas.append(start_live(SettableDemand(queries), clock=clock, start_refresher=False, interval_s=15.0))
    answers = []
    for scaler in replicas:
        channel, stub = stub_for(scaler.grpc_port)
        for r in reversed(refs) if scaler is replicas[1] else refs:    # registered in another order
            stub.GetMetricSpec(r, timeout=5)
        scaler.scaler.refresher.refresh_once()
        answers.append([tuple(x.SerializeToString(deterministic=True) for x in keda_poll(stub, r)) for r in refs])
        channel.close()
    for scaler in replicas:
        scaler.stop(1.0)
    assert answers[0] == answers[1]


def test_where_replicas_run_comes_from_the_pods_so_a_restarted_replica_plans_as_the_others():
    """The planner prefers to keep replicas where they run. Remembered from a replica's own earlier
    plans, that preference differed between a replica that planned before and one just started;
    read from the pods both see, it is the same."""
    key = "security/badge-readers"
    queries = {"sum(badge_streams)": 20.0}
    md = {"workload": "badge-readers", "query": "sum(badge_streams)"}
    demand = SettableDemand(queries)
    pods = StaticPodCounts()
    old = start_live(demand, clock=lambda: T0, start_refresher=False, interval_s=15.0, pods=pods)
    channel, stub = stub_for(old.grpc_port)
    stub.GetMetricSpec(ref("badge-readers", "security", **md), timeout=5)
    old.scaler.refresher.refresh_once(force=True)
    first = dict(old.scaler.refresher.state().default_view.plan.workloads[key].by_node)
    channel.close()
    # its pods run elsewhere than it planned (the scheduler placed them): both replicas see them there
    nodes = [n.name for n in old.scaler.refresher.state().default_view.snapshot.nodes]
    elsewhere = next(n for n in nodes if n not in first)
    pods.set(key, {elsewhere: sum(first.values())}, {elsewhere: sum(first.values())})
    new = start_live(demand, clock=lambda: T0 + 15.0, start_refresher=False, interval_s=15.0, pods=pods)
    plans = []
    for scaler in (old, new):
        channel, stub = stub_for(scaler.grpc_port)
        stub.GetMetricSpec(ref("badge-readers", "security", **md), timeout=5)
        scaler.scaler.refresher.refresh_once(force=True)
        view = scaler.scaler.refresher.state().default_view
        plans.append((dict(view.plan.workloads[key].by_node), dict(view.snapshot.state.placements.get(key, {}))))
        channel.close()
    for scaler in (old, new):
        scaler.stop(1.0)
    assert plans[0] == plans[1]
    assert plans[0][1] == {elsewhere: sum(first.values())}     # the planner was given where pods run


def test_configured_streams_are_not_forecast_but_measured_demand_is():
    """A person's `streams` is a decision, not a measurement: forecasting its changes would make
    replicas that saw the change one refresh apart plan differently for the trend's window."""
    from wattwise.plan_report import plan_report

    demand = SettableDemand({"sum(cams)": 20.0})
    scaler = start_live(demand, clock=lambda: T0, start_refresher=False, interval_s=15.0)
    try:
        channel, stub = stub_for(scaler.grpc_port)
        stub.GetMetricSpec(ref("fixed", "shop", workload="fixed", streams="30"), timeout=5)
        stub.GetMetricSpec(ref("measured", "shop", workload="measured", query="sum(cams)"), timeout=5)
        channel.close()
        scaler.scaler.refresher.refresh_once(force=True)
        doc = plan_report(scaler.scaler.refresher.state().default_view)
        forecast = {w["key"]: w["forecast"] for w in doc["workloads"]}
        assert forecast["shop/fixed"] is None
        assert forecast["shop/measured"]["expected_fps"] >= 20.0 * 15 and forecast["shop/measured"]["lead_s"] > 0
    finally:
        scaler.stop(1.0)
