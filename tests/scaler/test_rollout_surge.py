"""Make before break through the gRPC door (with pod-deletion costs set, as `serve
--set-deletion-cost` does: without them there is no surge, tests/scaler/test_answer_rollout.py):
while planned pods are not ready, GetMetrics and IsActive carry the core's surge of off-plan
pods; once they are ready, the plan's count again."""

from __future__ import annotations

from wattwise.models.rollout import desired_replicas
from wattwise.scaler.answer import Rollout
from wattwise.scaler.pod_counts import StaticPodCounts

from tests.scaler.helpers import demo_ref, keda_poll, scrape, start_demo, stub_for

KEY = "security/badge-readers"
COSTS_SET = Rollout(deletion_cost_set=True)


def value(stub, key=KEY) -> tuple[float, int, bool]:
    _, metrics, active = keda_poll(stub, demo_ref(key))
    mv = metrics.metricValues[0]
    return mv.metricValueFloat, mv.metricValue, active.result


def test_surge_while_planned_pods_are_not_ready_then_back_to_the_plan():
    pods = StaticPodCounts()
    scaler = start_demo(pods=pods, rollout=COSTS_SET)
    channel, stub = stub_for(scaler.grpc_port)
    try:
        view = scaler.scaler.refresher.state().default_view
        wp = view.plan.workloads[KEY]
        planned, by_node = wp.replicas, dict(wp.by_node)
        new_node = max(by_node, key=by_node.get)
        old_node = next(n.name for n in view.snapshot.nodes if n.name not in by_node)  # the plan moved off it
        assert planned >= 3 and old_node not in by_node

        # today: all replicas on a node the plan no longer wants; the planned ones are starting
        pods.set(KEY, {old_node: planned, **by_node}, {old_node: planned})
        assert value(stub) == (2.0 * planned, 2 * planned, True)
        # some planned pods ready: nothing is removed while any is starting (the ReplicaSet
        # controller would remove a starting planned pod before any old one)
        ready = {**{n: c for n, c in by_node.items()}, new_node: by_node[new_node] - 2}
        pods.set(KEY, {old_node: planned, **by_node}, {old_node: planned, **ready})
        assert value(stub) == (2.0 * planned, 2 * planned, True)
        assert 2 * planned == desired_replicas(planned, by_node, {old_node: planned, **by_node},
                                               {old_node: planned, **ready})
        # all planned pods ready: the plan's count, so the HPA removes the old ones
        pods.set(KEY, {old_node: planned, **by_node}, {old_node: planned, **by_node})
        assert value(stub) == (float(planned), planned, True)

        metrics = scrape(scaler)
        assert metrics[("wattwise_scaler_metric_answers_total", (("basis", "rollout"),))] == 3
        assert metrics[("wattwise_scaler_surge_replicas", (("workload", KEY),))] == 0
    finally:
        channel.close()
        scaler.stop(1.0)


def test_unknown_pods_answer_the_plan():
    pods = StaticPodCounts({KEY: ({"de-spr-2": 5, "uk-spr-1": 5}, {"de-spr-2": 5})}, known=False)
    scaler = start_demo(pods=pods, rollout=COSTS_SET)
    channel, stub = stub_for(scaler.grpc_port)
    try:
        planned = scaler.scaler.refresher.state().default_view.plan.workloads[KEY].replicas
        assert value(stub) == (float(planned), planned, True)
        pods.known = True
        assert value(stub)[1] > planned        # the same counts, now known: surge
        metrics = scrape(scaler)
        assert metrics[("wattwise_scaler_metric_answers_total", (("basis", "plan"),))] == 1
        assert metrics[("wattwise_scaler_metric_answers_total", (("basis", "rollout"),))] == 1
    finally:
        channel.close()
        scaler.stop(1.0)


def test_without_deletion_costs_the_answer_is_the_plan_and_says_why(caplog):
    pods = StaticPodCounts({KEY: ({"de-spr-2": 5, "uk-spr-1": 5}, {"de-spr-2": 5})})
    scaler = start_demo(pods=pods)                       # serve's default: no --set-deletion-cost
    channel, stub = stub_for(scaler.grpc_port)
    try:
        planned = scaler.scaler.refresher.state().default_view.plan.workloads[KEY].replicas
        with caplog.at_level("INFO", logger="wattwise.scaler.servicer"):
            assert value(stub) == (float(planned), planned, True)
        metrics = scrape(scaler)
        assert metrics[("wattwise_scaler_metric_answers_total", (("basis", "plan"),))] == 1
        assert ("wattwise_scaler_metric_answers_total", (("basis", "rollout"),)) not in metrics
        assert any("no make-before-break surge" in r.getMessage() for r in caplog.records)
    finally:
        channel.close()
        scaler.stop(1.0)
