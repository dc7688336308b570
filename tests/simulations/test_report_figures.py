"""The report's charts built from small hand-made series (no run): axes, ticks and hover formats
that make the values readable."""

import colorsys
from itertools import combinations

import numpy as np
import pytest

from wattwise.simulations.policies import KNOWN_POLICIES
from wattwise.simulations.report_figures import ReportData, build_charts
from wattwise.simulations.report_style import policy_line

BUCKETS = 24


def _dip(low: float) -> list[float]:
    """All frames processed but in one 15 minutes."""
    return [1.0] * (BUCKETS - 1) + [low]


def _series(sla: list[float] | float, nodes: float = 2.0) -> dict:
    demand = np.full(BUCKETS, 10.0)
    return {"bucket_s": np.full(BUCKETS, 900.0), "demand_fps": demand, "served_fps": demand * np.asarray(sla),
            "nodes_on": np.full(BUCKETS, nodes), "power_w": np.full(BUCKETS, 500.0)}


def _data(slas: dict[str, list[float] | float], wakes: dict[str, int] | None = None) -> ReportData:
    series = {name: _series(sla) for name, sla in slas.items()}
    policies = {name: {"sla_attainment": float(np.mean(s["served_fps"] / s["demand_fps"])),
                       "node_wakes": (wakes or {}).get(name, 0)} for name, s in series.items()}
    summary = {"inputs": {"carbon_start": "2023-06-01 00:00:00+00:00"}, "headline": {"sla_target": 0.999},
               "policies": policies, "scenario": {"zones": ["za"]}}
    return ReportData(summary, series, {"za": np.full(BUCKETS, 300.0)})


def _chart(data: ReportData, cid: str):
    return next(c for c in build_charts(data) if c.id == cid)


def test_sla_chart_stays_near_the_target_when_one_peer_falls_far_below():
    data = _data({"default": 0.56, "keda-tuned": _dip(0.9986), "wattwise": 1.0})
    chart = _chart(data, "sla")
    y = chart.figure.layout.yaxis
    assert tuple(y.range) == (0.99, 1.0005) and y.autorange is False
    assert y.tickformat == ".1~%"
    assert "Below 99% lines run off the bottom (default)" in chart.note


def test_sla_chart_reaches_down_to_show_a_policy_meeting_the_sla_overall():
    data = _data({"keda-tuned": _dip(0.987), "wattwise": 1.0})
    assert data.summary["policies"]["keda-tuned"]["sla_attainment"] >= 0.999
    y = _chart(data, "sla").figure.layout.yaxis
    assert tuple(y.range) == (0.985, 1.0005)
    assert "run off" not in _chart(data, "sla").note


def test_sla_hover_tells_99_86_from_99_9():
    y = _chart(_data({"keda-tuned": 0.9986, "wattwise": 1.0}), "sla").figure.layout.yaxis
    assert y.hoverformat == ".3%" and f"{0.9986:.3%}" == "99.860%"


def _hue_and_lightness(color: str) -> tuple[float, float]:
    h, lightness, _ = colorsys.rgb_to_hls(*(int(color[i:i + 2], 16) / 255 for i in (1, 3, 5)))
    return h * 360, lightness


def test_policy_lines_differ_in_dash_hue_or_lightness():
    """Thin lines of near hues (vermillion, orange, ochre) read as one: two solid lines need hues 30
    degrees apart or lightness a quarter apart."""
    for a, b in combinations(KNOWN_POLICIES, 2):
        la, lb = policy_line(a), policy_line(b)
        if la["dash"] != lb["dash"]:
            continue
        (ha, ya), (hb, yb) = _hue_and_lightness(la["color"]), _hue_and_lightness(lb["color"])
        hue_apart = min(abs(ha - hb), 360 - abs(ha - hb))
        assert hue_apart >= 30 or abs(ya - yb) >= 0.25, (a, b)


def test_every_policys_bars_have_their_own_colour():
    data = _data({name: 1.0 for name in KNOWN_POLICIES})
    colours = {t.name: t.marker.color for t in _chart(data, "wakes").figure.data}
    assert set(colours) == set(KNOWN_POLICIES)
    assert len(set(colours.values())) == len(KNOWN_POLICIES)


def test_node_wakes_are_ticked_in_whole_numbers():
    for top, dtick in ((3, 1), (12, 2), (511, 100)):
        y = _chart(_data({"keda-tuned": 1.0, "wattwise": 1.0}, wakes={"wattwise": top}), "wakes").figure.layout.yaxis
        assert (y.tickformat, y.tick0, y.dtick, y.rangemode) == ("d", 0, dtick, "tozero"), top


def test_dropped_per_workload_are_points_on_decade_ticks():
    data = _data({"default": 0.56, "wattwise": 0.9989})
    for s in data.summary["policies"].values():
        s["by_workload"] = {w: {"sla_attainment": s["sla_attainment"], "frames_processed": 9.0,
                                "frames_demanded": 10.0, "energy_kwh": 1.0} for w in ("default/cam", "default/door")}
    fig = _chart(data, "workload-dropped").figure
    assert {t.type for t in fig.data} == {"scatter"} and {t.mode for t in fig.data} == {"markers"}
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis.dtick == 1   # 0.1%, 1%, 10%: no 0.11% beside 0.1%


def test_dropped_within_one_decade_still_get_two_decade_ticks():
    data = _data({"keda-tuned": 0.9993, "wattwise": 0.99983})   # 0.07% and 0.017%: no decade between
    for s in data.summary["policies"].values():
        s["by_workload"] = {"default/cam": {"sla_attainment": s["sla_attainment"], "frames_processed": 9.0,
                                            "frames_demanded": 10.0, "energy_kwh": 1.0}}
    low, high = _chart(data, "workload-dropped").figure.layout.yaxis.range
    assert (low, high) == pytest.approx((-4.05, -2.95), abs=0.01)   # 0.01% and 0.1% ticks around the points
