"""The refresher plans in a worker process: same plans as in-process, nothing planned on the
server's own interpreter, and a dead worker is replaced with the view degraded until the next
good plan."""

from __future__ import annotations

import os
import signal
from dataclasses import replace

import pytest

from tests.scaler.helpers import SettableDemand, keda_poll, ref, scrape, start_live, stub_for
from wattwise.models.planner import plan
from wattwise.scaler import planning
from wattwise.scaler.planning import ProcessPlanner

QUERIES = {f'sum(streams{{w="{i}"}})': float(v) for i, v in enumerate((48, 60, 0, 7))}
REFS = [ref(f"so-{i}", "shop", workload=f"cams-{i}", query=q, objective=("carbon" if i % 2 else "energy"))
        for i, q in enumerate(QUERIES)]


@pytest.fixture(scope="module")
def worker_scaler():
    planner = ProcessPlanner(timeout_s=120.0)
    scaler = start_live(SettableDemand(QUERIES), start_refresher=False, planner=planner)
    refresher = scaler.scaler.refresher      # a budget the exact MILP never hits: plans compare equal
    refresher.settings = replace(refresher.settings, planner=replace(refresher.settings.planner, time_budget_s=60.0))
    planner.worker_pid()                         # up and running before the tests measure anything
    channel, stub = stub_for(scaler.grpc_port)
    for r in REFS:
        stub.GetMetricSpec(r, timeout=5)
    yield scaler, planner, stub
    channel.close()
    scaler.stop(1.0)


def _values(stub):
    return [keda_poll(stub, r)[1].metricValues[0].metricValueFloat for r in REFS]


def test_plans_from_the_worker_equal_the_core_plan_and_none_is_made_in_process(worker_scaler, monkeypatch):
    scaler, _, stub = worker_scaler

    def not_here(_snapshot):
        raise AssertionError("planned on the server's own process")

    monkeypatch.setattr(planning, "make_plan", not_here)   # the worker's interpreter is untouched
    state = scaler.scaler.refresher.refresh_once()
    monkeypatch.undo()
    assert not state.degraded, state.degraded_reasons
    assert sorted(o.kind for o in state.views) == ["carbon", "energy"]
    for view in state.views.values():
        expected, expected_state = plan(view.snapshot)
        assert view.plan == expected and view.state == expected_state
    for r, value in zip(REFS, _values(stub)):
        objective = r.scalerMetadata["objective"]
        view = next(v for o, v in state.views.items() if o.kind == objective)
        assert value == view.plan.workloads[f"shop/{r.scalerMetadata['workload']}"].replicas


def test_dead_worker_is_replaced_and_the_view_degraded_until_the_next_good_plan(worker_scaler):
    scaler, planner, stub = worker_scaler
    refresher = scaler.scaler.refresher
    before = refresher.refresh_once()
    assert not before.degraded
    answers = _values(stub)
    old_pid = planner.worker_pid()

    os.kill(old_pid, signal.SIGKILL)
    failed = refresher.refresh_once(force=True)              # the gate would keep the plan: nothing changed
    assert failed.degraded and "planner worker process died" in " ".join(failed.degraded_reasons)
    assert refresher.current().degraded                      # what the extender reads, too
    assert _values(stub) == answers                          # still answering from the previous plan
    assert scrape(scaler)[("wattwise_degraded", ())] == 1

    assert planner.worker_pid() != old_pid
    recovered = refresher.refresh_once()                     # the failed plan is retried without forcing
    assert refresher.last_decision == (True, "retry")
    assert not recovered.degraded and recovered.version > failed.version
    assert _values(stub) == answers
    assert scrape(scaler)[("wattwise_degraded", ())] == 0


def test_fork_is_refused():
    with pytest.raises(ValueError, match="forkserver"):
        ProcessPlanner(context="fork")
