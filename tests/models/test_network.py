"""Nearby grid zones: a workload runs only where its cameras' zone reaches within its latency bound,
one rule for the planner, the extender and the simulator (`eligibility.hard_reason`)."""

from __future__ import annotations

import pytest

from wattwise.models.errors import InvalidInputError
from wattwise.models.network import Network
from wattwise.models.planner import plan
from wattwise.models.scenario import load_scenario

NETWORKED = """name: t
objective: carbon
zones:
  fra: {carbon_g_per_kwh: 400}
  lon: {carbon_g_per_kwh: 150}
  far: {carbon_g_per_kwh: 10}
network:
  rtt_ms: {fra: {lon: 15}, lon: {far: 300}}
node_classes: {c: {cores: 64, memory_gib: 256, power: {idle_w: 100, max_w: 400}}}
nodes:
  - {name_prefix: fra, class: c, zone: fra, count: 2}
  - {name_prefix: lon, class: c, zone: lon, count: 2}
  - {name_prefix: far, class: c, zone: far, count: 2}
workloads:
  - {name: cams, streams: 8, latency_ms: LATENCY, origin_zone: fra}
"""


def scenario(tmp_path, latency_ms: float = 200, text: str = NETWORKED):
    path = tmp_path / "s.yaml"
    path.write_text(text.replace("LATENCY", str(latency_ms)))
    return load_scenario(path).snapshot


def test_cameras_in_a_dirty_zone_are_served_from_a_clean_one_within_reach(tmp_path):
    snap = scenario(tmp_path)
    result = plan(snap)[0]
    zones = {p.node.split("-")[0] for p in result.placements}
    assert zones == {"lon"}      # cleaner than fra and 15 ms away; far is unreachable from fra


def test_a_round_trip_that_breaks_the_latency_bound_keeps_the_work_at_home(tmp_path):
    snap = scenario(tmp_path)
    w = snap.workloads[0]
    model = snap.model(w, snap.node_classes["c"])
    tight = model.frame_time_ms() + 10       # room for the frame, not for the 15 ms round trip
    result = plan(scenario(tmp_path, latency_ms=tight))[0]
    assert {p.node.split("-")[0] for p in result.placements} == {"fra"}


def test_the_reason_names_the_zones(tmp_path):
    from wattwise.models.eligibility import hard_reason

    snap = scenario(tmp_path)
    w, cls = snap.workloads[0], snap.node_classes["c"]
    far = next(n for n in snap.nodes if n.zone == "far")
    reason = hard_reason(w, far, cls, snap.model(w, cls))
    assert reason == "node(s) in zone far are not reachable from zone fra where the pod's streams come from"
    assert reason.category == "network" and "," not in reason


def test_without_a_network_every_zone_is_as_before(tmp_path):
    text = NETWORKED.replace("network:\n  rtt_ms: {fra: {lon: 15}, lon: {far: 300}}\n", "").replace(
        ", origin_zone: fra", "")
    result = plan(scenario(tmp_path, text=text))[0]
    assert {p.node.split("-")[0] for p in result.placements} == {"far"}     # cleanest of all


@pytest.mark.parametrize("raw, problem", [
    ({"a": {"b": 10}, "b": {"a": 12}}, "round trips are symmetric"),
    ({"a": {"a": 3}}, "a zone is 0 ms from itself"),
    ({"a": {"b": -1}}, "is not a round trip"),
    ({"a": {"zz": 1}}, "unknown zone 'zz'"),
    ({"a": 5}, "must map zones"),
])
def test_bad_networks_name_the_pair(raw, problem):
    with pytest.raises(InvalidInputError) as e:
        Network.parse(raw, "network.rtt_ms", frozenset({"a", "b"}))
    assert problem in str(e.value)


def test_one_way_is_enough_and_a_zone_reaches_itself():
    net = Network.parse({"a": {"b": 10}}, "x")
    assert net.reach("b").rtt_to("a") == 10 and net.reach("a").rtt_to("a") == 0
    assert net.reach("a").rtt_to("c") is None


def test_origin_zone_needs_a_network_and_a_known_zone(tmp_path):
    text = NETWORKED.replace("network:\n  rtt_ms: {fra: {lon: 15}, lon: {far: 300}}\n", "")
    with pytest.raises(InvalidInputError) as e:
        scenario(tmp_path, text=text)
    assert "workloads.0.origin_zone" in str(e.value) and "network" in str(e.value)
    with pytest.raises(InvalidInputError) as e:
        scenario(tmp_path, text=NETWORKED.replace("origin_zone: fra", "origin_zone: paris"))
    assert "unknown zone 'paris'" in str(e.value)
