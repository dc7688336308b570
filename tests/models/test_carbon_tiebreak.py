"""Under the `energy` objective carbon breaks ties: of two placements that cost the same watts,
the one on the cleaner grid; it never moves running replicas (the tie-break is far below a
replica's start-up energy) and it does not outweigh a real energy difference."""

from __future__ import annotations

from dataclasses import replace

from wattwise.models.costs import zone_weights
from wattwise.models.planner import plan

from tests.models.builders import node, node_class, snapshot, workload


def _zones(result, key):
    return {n.split("-")[0]: c for n, c in result.workloads[key].by_node.items() if c}


def test_equal_watts_go_to_the_cleaner_zone():
    cls = node_class("spr", cores=64, amx=True)
    nodes = [node("de-1", cls, zone="de"), node("uk-1", cls, zone="uk")]
    for clean, dirty in (("uk", "de"), ("de", "uk")):
        snap = snapshot([cls], nodes, [workload("cams", fps=60.0)], carbon={clean: 120.0, dirty: 380.0})
        result, _ = plan(snap)
        assert set(_zones(result, "default/cams")) == {clean.split("-")[0]}


def test_the_tie_break_does_not_outweigh_watts_or_move_running_replicas():
    cls = node_class("spr", cores=64, amx=True)
    weights = zone_weights(snapshot([cls], [node("de-1", cls, zone="de"), node("uk-1", cls, zone="uk")],
                                    [workload()], carbon={"uk": 50.0, "de": 500.0}), {"de", "uk"})
    assert abs(weights["de"] / weights["uk"] - 1) < 2e-4          # a tenth of a watt in a kilowatt at most
    # replicas running on the dirtier node stay there when demand is unchanged
    nodes = [node("de-1", cls, zone="de"), node("uk-1", cls, zone="uk")]
    first, state = plan(snapshot([cls], nodes, [workload("cams", fps=60.0)], carbon={"uk": 380.0, "de": 120.0}))
    assert set(_zones(first, "default/cams")) == {"de"}
    again, _ = plan(replace(snapshot([cls], nodes, [workload("cams", fps=60.0)], carbon={"uk": 120.0, "de": 380.0},
                                     state=state, now_s=60.0)))
    assert _zones(again, "default/cams") == _zones(first, "default/cams")
