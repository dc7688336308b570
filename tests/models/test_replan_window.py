"""`models.replan` as the scaler's refresher uses it: a window read more often than its step,
workloads that come and go, untrustworthy samples; and what-a-plan-was-made-of changes that
re-plan at once."""

from dataclasses import replace

import numpy as np

from wattwise.models.planner import plan
from wattwise.models.replan import DemandWindow, PlanInputs, PlanMark, ReplanSettings, needs_replan

from tests.models.builders import node, node_class, snapshot, workload

GATE = ReplanSettings()


def test_a_second_sample_at_the_same_time_replaces_the_first():
    w = DemandWindow(["a"], window_s=300, step_s=15)
    w.add(0.0, np.array([50.0]))
    w.add(0.0, np.array([40.0]))
    assert w.history(0.0)["a"] == ((0.0, 40.0),)


def test_samples_more_often_than_the_step_keep_the_peak():
    w = DemandWindow(["a"], window_s=300, step_s=100)      # room for 4 samples at 100 s steps
    w.add(0.0, np.array([900.0]))
    for t in range(10, 300, 10):
        w.add(float(t), np.array([10.0]))
    assert w.peak(299.0, np.array([10.0]))[0] == 900.0
    assert len(w.history(299.0)["a"]) == 30
    assert w.peak(301.0, np.array([10.0]))[0] == 10.0


def test_untrustworthy_samples_and_new_keys_are_left_out():
    w = DemandWindow(["a", "b"], window_s=300, step_s=15)
    w.add(0.0, np.array([100.0, np.nan]))
    w.add(15.0, np.array([np.nan, 20.0]))
    assert w.history(15.0) == {"a": ((0.0, 100.0),), "b": ((15.0, 20.0),)}
    assert list(w.peak(30.0, np.array([np.nan, 5.0]))) == [100.0, 20.0]
    w2 = w.rekeyed(["b", "c"])
    assert w2.history(15.0) == {"b": ((15.0, 20.0),), "c": ()}
    peak = w2.peak(30.0, np.array([1.0, np.nan]))
    assert peak[0] == 20.0 and np.isnan(peak[1])           # nothing trustworthy: no demand reason fires
    assert w.rekeyed(["a", "b"]) is w


def _mark_and_snapshot():
    cls = node_class("c", amx=True, cores=64)
    snap = snapshot([cls], [node("n1", cls), node("n2", cls)], [workload(fps=100)])
    p, _ = plan(snap)
    return PlanMark.of(p, snap, np.array([1.0])), snap


def test_inputs_changes_replan_at_once_and_name_what_changed():
    mark, snap = _mark_and_snapshot()
    fps, k = np.array([100.0]), np.array([1.0])
    same = PlanInputs.of(replace(snap, workloads=(workload(fps=250),)))        # demand is not an input
    assert needs_replan(mark, 1.0, fps, k, False, GATE, same) == (False, "too soon")
    assert needs_replan(mark, 1.0, fps, k, False, GATE) == (False, "too soon")   # the simulator passes none
    cases = {
        "workloads-changed": replace(snap, workloads=(workload(fps=100, max_r=5),)),
        "trust-changed": replace(snap, workloads=(workload(fps=100, trustworthy=False),)),
        "nodes-changed": replace(snap, nodes=snap.nodes[:1]),
    }
    for reason, changed in cases.items():
        assert needs_replan(mark, 1.0, fps, k, False, GATE, PlanInputs.of(changed)) == (True, reason)
    # a node's power state and the room other pods leave are not inputs (pods waiting is the reason)
    asleep = replace(snap, nodes=(replace(snap.nodes[0], powered_on=False),) + snap.nodes[1:])
    assert PlanInputs.of(asleep) == mark.inputs
