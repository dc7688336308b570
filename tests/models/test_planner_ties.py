"""Equal costs never move running replicas.

Two nodes that cost the same (one class, or two classes with the same prior and power curve, as
spr-tdx-1 and spr-tdx-2 in the recorded cluster) used to swap a workload's replicas when its count
changed: 8 on spr-tdx-1, then 9 with all of them on spr-tdx-2, because the greedy cascade, LP
rounding, local search and packing broke ties by group order (class name, then node name). In a
cluster each such flip deletes pods on one node and starts them on the other (TEE start-up energy,
SLA dips). Ties now go to the node already running the workload's replicas, then to the node
running most replicas of any workload, in every solver path; moves that pay back their start-up
energy still happen.
"""

from dataclasses import replace

import numpy as np
import pytest

from wattwise.models.fallback import solve_greedy
from wattwise.models.frozen import FrozenMap
from wattwise.models.grouping import group_nodes
from wattwise.models.improve import improve
from wattwise.models.milp import solve, solve_lp_rounding
from wattwise.models.packing import pack_group
from wattwise.models.planner import plan, planning_problem
from wattwise.models.resources import Resources
from wattwise.models.snapshot import PolicyState

from tests.models.builders import TDX, node, node_class, snapshot, workload

A, B = "spr-tdx-1", "spr-tdx-2"
KEY = "default/w"


def fps_for(replicas: int, confidential: bool = True) -> float:
    """Demand that needs exactly `replicas` replicas with the default 10% headroom."""
    cls = node_class("c", amx=True, tees=[TDX])
    w = workload(tees=["tdx"] if confidential else None, cpu=4)
    cap = planning_problem(snapshot([cls], [node("n", cls)], [w]))[-1].cap[0]
    return (replicas - 0.5) * cap / 1.1


def cluster(layout: str, cores: int = 48, **cls_kw):
    """(classes, nodes, settings) for two interchangeable nodes A and B.

    one-class: one class, a group per node. two-classes: two classes with the same prior and power
    curve; B's, m7i-metal-48xl, sorts first (as in the recorded cluster). grouped: one class, both
    nodes in one group (as in clusters of `exact_below_nodes` nodes or more)."""
    spr = node_class("spr-amx-tdx", amx=True, cores=cores, tees=[TDX], **cls_kw)
    m7i = node_class("m7i-metal-48xl", amx=True, cores=cores, tees=[TDX], **cls_kw)
    if layout == "two-classes":
        return [spr, m7i], [node(A, spr), node(B, m7i)], {}
    settings = {"exact_below_nodes": 1} if layout == "grouped" else {}
    return [spr], [node(A, spr), node(B, spr)], settings


def moved(before: dict, after: dict) -> int:
    """Replicas taken off some nodes while others were started elsewhere: the pods a move deletes
    and recreates. A pure scale-up or scale-down moves none."""
    nodes = set(before) | set(after)
    added = sum(max(0, after.get(n, 0) - before.get(n, 0)) for n in nodes)
    removed = sum(max(0, before.get(n, 0) - after.get(n, 0)) for n in nodes)
    return min(added, removed)


def run(classes, nodes, settings, start: dict, counts, confidential=True):
    """Plans for demand needing each of `counts` replicas in turn, from `start` placed: by_node each time."""
    state = PolicyState(placements=FrozenMap({KEY: FrozenMap(start)}))
    out = []
    for i, count in enumerate(counts):
        w = workload(fps=fps_for(count, confidential), tees=["tdx"] if confidential else None, cpu=4)
        # each plan 400 s after the last: past the scale-down window, so demand is planned as it is
        result, state = plan(snapshot(classes, nodes, [w], now_s=400.0 * i, state=state, **settings))
        out.append(dict(result.workloads[KEY].by_node))
    return out


UP_AND_DOWN = (8, 9, 10, 9, 8)


@pytest.mark.parametrize("layout", ["one-class", "two-classes", "grouped"])
@pytest.mark.parametrize("start", [A, B])
@pytest.mark.parametrize("confidential", [True, False])
@pytest.mark.parametrize("free_startup", [False, True])
def test_equal_nodes_a_count_change_only_adds_or_removes(layout, start, confidential, free_startup):
    """8 -> 9 -> 10 -> 9 -> 8 replicas, all on the node that ran them; with a free start-up too
    (no cost difference at all), where only the tie-breaks keep them there."""
    kw = {"startup_s": 0.0, "startup_tee_s": 0.0} if free_startup else {}
    classes, nodes, settings = cluster(layout, **kw)
    before = {start: 8}
    for count, after in zip(UP_AND_DOWN, run(classes, nodes, settings, before, UP_AND_DOWN, confidential)):
        assert after == {start: count}, (before, after)
        before = after


@pytest.mark.parametrize("layout", ["one-class", "two-classes", "grouped"])
@pytest.mark.parametrize("start", [A, B])
def test_equal_nodes_overflow_goes_to_the_other_and_comes_back_from_it(layout, start):
    """8 fit on a node: the 9th and 10th start on the other node, and scaling down removes them
    there, never the ones on the full node."""
    classes, nodes, settings = cluster(layout, cores=32)
    other = B if start == A else A
    before = {start: 8}
    expected = [{start: 8}, {start: 8, other: 1}, {start: 8, other: 2}, {start: 8, other: 1}, {start: 8}]
    for want, after in zip(expected, run(classes, nodes, settings, before, UP_AND_DOWN)):
        assert moved(before, after) == 0 and after == want, (before, after)
        before = after


@pytest.mark.parametrize("layout", ["one-class", "two-classes"])
@pytest.mark.parametrize("count", [8, 9, 10])
def test_every_solver_path_keeps_running_replicas_on_a_tie(layout, count):
    """Greedy, LP rounding, the MILP (exact and within the default gap) and the local search on
    each: none moves the 8 replicas off the group that sorts last, where they run."""
    classes, nodes, settings = cluster(layout)
    s = snapshot(classes, nodes, [workload(fps=fps_for(count), tees=["tdx"], cpu=4)], **settings)
    groups = planning_problem(s)[0]
    last = groups[-1].nodes[0].name                         # the group every old tie-break went against
    s = replace(s, state=PolicyState(placements=FrozenMap({KEY: FrozenMap({last: 8})})))
    p = planning_problem(s)[-1]
    kept = int(np.where(p.prev > 0)[0][0])
    assert p.pair_group[kept] == len(groups) - 1
    starts = {"greedy": solve_greedy(p), "lp-rounding": solve_lp_rounding(p),
              "milp-exact": solve(p, 10.0, 1e-9)[0], "milp-1%": solve(p, 10.0, 0.01)[0]}
    for name, sol in starts.items():
        assert sol is not None and sol.x[kept] >= 8, (name, sol.x)
        polished = improve(p, sol)
        assert polished.x[kept] == count and polished.x.sum() == count, (name, polished.x)


@pytest.mark.parametrize("max_w_b, moves", [(300.0, False), (280.0, False), (240.0, True)])
def test_a_move_still_happens_when_it_pays_back_its_start_up(max_w_b, moves):
    """B's replicas draw 0, 1.7 and 5 W less than A's; restarting one costs 600 s of its power.
    Ten replicas move from A only where the saving pays the eight restarts back within
    the amortisation horizon; ties and small savings keep them where they run."""
    spr = node_class("spr-amx-tdx", amx=True, cores=48, tees=[TDX], startup_tee_s=600.0)
    m7i = node_class("m7i-metal-48xl", amx=True, cores=48, tees=[TDX], startup_tee_s=600.0, max_w=max_w_b)
    after = run([spr, m7i], [node(A, spr), node(B, m7i)], {}, {A: 8}, [10])[0]
    assert after == ({B: 10} if moves else {A: 10})


def test_a_new_workload_joins_the_node_that_already_runs_replicas():
    """Both nodes stay on whatever we do (other tenants' pods: idle power is sunk), so a new
    workload costs the same on either: it goes where WattWise replicas already run (B), not to the
    node that sorts first."""
    cls = node_class("spr-amx-tdx", amx=True, cores=48, tees=[TDX])
    nodes = [node(A, cls, reserved_cpu_m=2000), node(B, cls, reserved_cpu_m=2000)]
    other = workload("u", fps=fps_for(4, False), cpu=4)
    new = workload("w", fps=fps_for(3, False), cpu=4)
    state = PolicyState(placements=FrozenMap({"default/u": FrozenMap({B: 4})}))
    result, _ = plan(snapshot([cls], nodes, [other, new], state=state))
    assert dict(result.workloads["default/u"].by_node) == {B: 4}
    assert dict(result.workloads["default/w"].by_node) == {B: 3}


def test_packing_keeps_the_most_replicas_where_most_run_and_fills_busy_nodes_first():
    cls = node_class("c", cores=64)
    group = group_nodes([node("n1", cls), node("n2", cls), node("n3", cls)], {"c": cls}, exact_below=1)[0]
    fp = {0: Resources(4000, 4096, 0), 1: Resources(4000, 4096, 0)}
    # scale-down from 2 + 11 to 12: the node running 11 keeps them, the one running 2 gives one up
    placed, unplaced, _ = pack_group(group, {0: 12}, fp, {0: {"n1": 2, "n2": 11}}, 1)
    assert placed[0] == {"n2": 11, "n1": 1} and not unplaced
    # a workload new to the group goes to the node running replicas of another one
    placed, _, used = pack_group(group, {1: 3}, fp, {1: {}}, 1, running={"n3": 5})
    assert placed[1] == {"n3": 3} and used == ["n3"]
