"""Pre-warming through the plan loop (`PlanCycle`): replicas started for a ramp the forecast
expects are kept when the ramp arrives, not scaled down by its first, partial sample."""

import numpy as np

from tests.models.builders import cycle_replicas, node, node_class, workload
from wattwise.models.forecast import DAY_S
from wattwise.models.plan_cycle import CycleInputs, CycleSettings, PlanCycle
from wattwise.models.ports import CarbonReading

H = 3600.0
C = node_class("amx", amx=True, cores=64)
NODES = [node(f"n{i}", C) for i in range(6)]


def shift_start(t_s: float) -> float | None:
    """180 fps; from 16:00 a shift: 690 fps for its first minute, then 1200 fps until 20:00.
    None (telemetry down) from 16:01 to 16:03 on the second day."""
    tod = t_s % DAY_S
    if DAY_S + 16 * H + 60 <= t_s < DAY_S + 16 * H + 180:
        return None
    if 16 * H <= tod < 16 * H + 60:
        return 690.0
    return 1200.0 if 16 * H + 60 <= tod < 20 * H else 180.0


def run(until_s: float, step_s: float = 60.0) -> dict[float, int]:
    cycle = PlanCycle(CycleSettings(interval_s=step_s))
    return dict(cycle_replicas(cycle, [(float(t_s), shift_start(t_s)) for t_s in np.arange(0.0, until_s, step_s)],
                               C, NODES))


def test_replicas_pre_warmed_for_a_ramp_are_kept_as_it_arrives():
    out = run(DAY_S + 16 * H + 600)
    ramp = DAY_S + 16 * H
    night, warmed = out[ramp - 600], out[ramp - 60]
    assert warmed > night                                   # pre-warmed a refresh before the ramp
    after = [out[t] for t in out if ramp <= t <= ramp + 540]
    assert min(after) >= warmed, after                      # its first 690 fps and an outage drop none


def test_the_classes_a_workload_may_use_are_worked_out_again_only_when_the_cluster_changes(monkeypatch):
    """A live refresher hands over a new, equal nodes tuple every refresh: eligibility (grouping
    every node) ran each time; now only when what it reads changed (here: a node added)."""
    from wattwise.models import plan_cycle

    calls = []
    real = plan_cycle.usable_classes
    monkeypatch.setattr(plan_cycle, "usable_classes", lambda *a, **k: calls.append(1) or real(*a, **k))
    cycle = PlanCycle(CycleSettings(interval_s=15.0))
    for i, nodes in enumerate([list(NODES), list(NODES), list(NODES), NODES + [node("n9", C)]]):
        cycle.step(CycleInputs(now_s=15.0 * i, node_classes={C.name: C}, nodes=tuple(nodes),
                               carbon={"z1": CarbonReading("z1", 300.0, 15.0 * i, "test")},
                               workloads=[workload("a", fps=100.0 + i)]))
    assert len(calls) == 2
