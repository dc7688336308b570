"""The report's charts built from small hand-made series (no run): axes, ticks and hover formats
that make the values readable."""

import numpy as np

from wattwise.simulations.report_figures import ReportData, build_charts

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
