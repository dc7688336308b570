"""A CPU replica that requests no CPU has no prior (its capacity is cores x fps per core), so no
node qualifies; the plan must say that, not that the class "cannot run the model"."""

from __future__ import annotations

from wattwise.models.planner import plan

from tests.models.builders import node, node_class, snapshot, workload


def test_zero_cpu_request_names_the_missing_cpu_request():
    cls = node_class("spr", cores=64, amx=True)
    snap = snapshot([cls], [node("n1", cls)], [workload("zero-cpu", fps=60.0, cpu=0)])
    result, _ = plan(snap)
    wp = result.workloads["default/zero-cpu"]
    assert wp.replicas == 0
    text = " ".join(wp.reasons)
    assert "requests no CPU" in text and "`cpu`" in text
    assert "cannot run model" not in text


def test_a_cpu_request_plans_as_before():
    cls = node_class("spr", cores=64, amx=True)
    snap = snapshot([cls], [node("n1", cls)], [workload("four-cpu", fps=60.0, cpu=4)])
    result, _ = plan(snap)
    assert result.workloads["default/four-cpu"].replicas >= 1
