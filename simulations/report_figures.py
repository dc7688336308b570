"""The report's charts (plotly figures), from the summary and each policy's 15-minute series
(`Recorder.series`): over time on the run's simulated clock (active nodes, power, SLA attainment,
dropped frames, demand, grid carbon intensity), and per policy, per workload and per grid zone."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from wattwise.simulations.report_style import (DEMAND_COLOR, POLICY_COLORS, base_layout, policy_line,
                                               zone_line)


NO_PODS = "nodes without pods"


@dataclass(frozen=True)
class Chart:
    id: str          # the figure's element id in the page
    section: str     # "time", "policy", "workload" or "zone"
    title: str
    note: str        # one line under the title: what is shown and how it was computed
    figure: go.Figure


@dataclass(frozen=True)
class ReportData:
    summary: dict
    series: dict[str, dict]                 # policy -> Recorder.series()
    carbon_g_per_kwh: dict[str, np.ndarray]  # zone -> 15-minute mean intensity


def bucket_times(start: str, bucket_s: np.ndarray) -> list[str]:
    """The start of each 15-minute bucket on the simulated clock, as naive UTC for plotly's date axis."""
    t0 = pd.Timestamp(start)
    t0 = t0.tz_convert("UTC").tz_localize(None) if t0.tzinfo is not None else t0
    offsets = np.concatenate([[0.0], np.cumsum(bucket_s)[:-1]])
    return [(t0 + pd.Timedelta(seconds=float(s))).strftime("%Y-%m-%d %H:%M:%S") for s in offsets]


def _policy_lines(data: ReportData, x: list[str], values) -> list[go.Scatter]:
    return [go.Scatter(x=x, y=np.round(values(s), 6), name=name, mode="lines", line=policy_line(name))
            for name, s in data.series.items()]


def _overlaps(traces: list[go.Scatter]) -> str:
    """' Lines on top of each other: a, b.' for policies whose series are the same."""
    groups: dict[bytes, list[str]] = {}
    for t in traces:
        y = np.asarray(t.y, float)
        if np.isfinite(y).any():
            groups.setdefault(y.tobytes(), []).append(t.name)
    same = [names for names in groups.values() if len(names) > 1]
    if not same:
        return ""
    return " Lines on top of each other (the same values): " + "; ".join(", ".join(g) for g in same) + "."


def _sla(s: dict) -> np.ndarray:
    d = s["demand_fps"]
    return np.divide(s["served_fps"], d, out=np.ones_like(d), where=d > 0)


def _dropped_so_far(s: dict) -> np.ndarray:
    """Frames dropped since the start; none yet is no point (a log axis has no 0)."""
    total = np.cumsum((s["demand_fps"] - s["served_fps"]) * s["bucket_s"])
    return np.where(total > 0.5, total, np.nan)


SLA_AXIS_TOP = 1.0005     # 100% with a little room, so a line at 100% is not drawn on the frame
SLA_AXIS_BOTTOM = 0.99
SLA_AXIS_FLOOR = 0.95


def _sla_axis_bottom(data: ReportData, sla_target: float) -> float:
    """99%, or lower (to a whole half percent, not below 95%) to show every 15 minutes of the policies
    meeting the SLA overall. Fixed rather than autoranged: one peer down at 56% would otherwise squash
    every other line and the SLA line together at the top."""
    policies = data.summary["policies"]
    meeting = [float(np.min(_sla(s))) for name, s in data.series.items()
               if len(s["demand_fps"]) and policies.get(name, {}).get("sla_attainment", 0.0) >= sla_target]
    lowest = math.floor(min(meeting, default=SLA_AXIS_BOTTOM) * 200) / 200
    return max(SLA_AXIS_FLOOR, min(SLA_AXIS_BOTTOM, lowest))


def _below_the_axis(data: ReportData, bottom: float) -> str:
    """' Below 99% the lines run off the bottom (default, peaks); totals are in the table.'"""
    below = [name for name, s in data.series.items() if len(s["demand_fps"]) and np.min(_sla(s)) < bottom]
    if not below:
        return ""
    return (f" Below {bottom * 100:.4g}% lines run off the bottom ({', '.join(below)}); each policy's overall SLA is in "
            "the table.")


def _time_charts(data: ReportData) -> list[Chart]:
    any_series = next(iter(data.series.values()))
    x = bucket_times(data.summary["inputs"]["carbon_start"], any_series["bucket_s"])
    sla_target = (data.summary.get("headline") or {}).get("sla_target", 0.999)

    def chart(cid, title, note, traces, y_title, y_format=None, **axis):
        layout = base_layout(y_title, time_axis=True, y_format=y_format)
        layout["yaxis"].update(axis)
        return Chart(cid, "time", title, note + (_overlaps(traces) if traces[0].name in POLICY_COLORS else ""),
                     go.Figure(traces, layout))

    bottom = _sla_axis_bottom(data, sla_target)
    sla = chart("sla", "SLA attainment", "Frames processed within the SLA latency over frames demanded, per 15 "
                "minutes; the dashed line is the SLA a run must meet overall." + _below_the_axis(data, bottom),
                _policy_lines(data, x, _sla), "frames processed", ".1~%", rangemode="normal",
                range=[bottom, SLA_AXIS_TOP], autorange=False, hoverformat=".3%")
    sla.figure.add_hline(y=sla_target, line={"color": "#888888", "dash": "dash", "width": 1},
                         annotation={"text": f"SLA {sla_target:.1%}", "font": {"size": 11, "color": "#555555"}},
                         annotation_position="bottom right")
    dropped = _policy_lines(data, x, _dropped_so_far)
    none = [t.name for t in dropped if np.isnan(np.asarray(t.y, float)).all()]
    charts = [
        chart("nodes", "Active nodes", "Nodes awake (not asleep, waking or going to sleep), mean over each 15 "
              "minutes.", _policy_lines(data, x, lambda s: s["nodes_on"]), "nodes awake"),
        chart("power", "Cluster power", "Power of all nodes (asleep and waking ones included), mean over each "
              "15 minutes.", _policy_lines(data, x, lambda s: s["power_w"] / 1000.0), "kW"),
        sla,
        chart("dropped", "Dropped frames", "Frames demanded but not processed (no ready replica had room), added "
              "up since the start, on a log scale so a few thousand and millions both show"
              + (f"; none dropped, so no line: {', '.join(none)}." if none else "."),
              dropped, "frames dropped so far", type="log", rangemode="normal", tickformat="~s"),
    ]
    demand = go.Scatter(x=x, y=np.round(any_series["demand_fps"], 3), name="demand, all workloads", mode="lines",
                        line={"color": DEMAND_COLOR, "width": 1.6})
    charts.append(chart("demand", "Demand", "Frames per second demanded by all workloads (the same for every "
                        "policy), mean over each 15 minutes.", [demand], "frames/s"))
    zones = [go.Scatter(x=x, y=np.round(v, 2), name=zone, mode="lines", line=zone_line(i))
             for i, (zone, v) in enumerate(data.carbon_g_per_kwh.items())]
    charts.append(chart("carbon-intensity", "Grid carbon intensity", "Each zone's carbon intensity as replayed, "
                        "mean over each 15 minutes.", zones, "gCO2eq/kWh"))
    return charts


def _two_lines(label: str) -> str:
    """'retail/<br>checkout-cams', 'nodes<br>without pods': category labels that need no tilting."""
    if "/" in label:
        return label.replace("/", "/<br>", 1)
    return label.replace(" ", "<br>", 1) if len(label) > 12 else label


def _category_axis(categories: list[str]) -> dict:
    return {"tickmode": "array", "tickvals": categories, "ticktext": [_two_lines(c) for c in categories]}


def _bars(categories: list[str], per_policy: dict[str, list[float]], y_title: str, y_format: str | None = None,
          hover: str = "%{y}", customdata: dict[str, list] | None = None) -> go.Figure:
    traces = [go.Bar(x=categories, y=values, name=name, marker={"color": POLICY_COLORS[name]},
                     customdata=(customdata or {}).get(name), hovertemplate=hover + f"<extra>{name}</extra>")
              for name, values in per_policy.items()]
    layout = base_layout(y_title, time_axis=False, y_format=y_format)
    layout.update({"barmode": "group", "bargap": 0.2, "bargroupgap": 0.05})
    layout["xaxis"].update(_category_axis(categories))
    return go.Figure(traces, layout)


def _log_points(categories: list[str], per_policy: dict[str, list[float | None]], y_title: str, y_format: str,
                hover: str, customdata: dict[str, list]) -> go.Figure:
    """A marker per policy and category, side by side, on a log axis ticked at whole decades: a bar's
    length on a log axis is measured from an arbitrary floor and means nothing."""
    traces = [go.Scatter(x=categories, y=values, name=name, mode="markers",
                         marker={"color": POLICY_COLORS[name], "size": 9, "line": {"width": 0}},
                         customdata=customdata.get(name), hovertemplate=hover + f"<extra>{name}</extra>")
              for name, values in per_policy.items()]
    layout = base_layout(y_title, time_axis=False, y_format=y_format)
    layout.update({"scattermode": "group", "scattergap": 0.3})
    layout["xaxis"].update(_category_axis(categories))
    layout["yaxis"].update({"type": "log", "rangemode": "normal", "dtick": 1, "hoverformat": ".3%"})
    shown = [v for values in per_policy.values() for v in values if v]
    if shown:
        layout["yaxis"]["range"] = _decades_around(shown)
    return go.Figure(traces, layout)


def _decades_around(values: list[float]) -> list[float]:
    """A log axis's range (in decades) around the values, padded a little and widened to the nearer
    decade until it holds two: with ticks at decades only, values within one decade would
    otherwise get one tick label or none."""
    logs = np.log10(values)
    low, high = float(logs.min()) - 0.15, float(logs.max()) + 0.15
    while math.floor(high) - math.ceil(low) < 1:
        if math.ceil(high) - high <= low - math.floor(low):
            high = math.ceil(high) + 0.05
        else:
            low = math.floor(low) - 0.05
    return [low, high]


def _whole_dtick(top: float, most: int = 6) -> int:
    """The tick step for a count axis: the smallest of 1, 2, 5, 10, 20, 50, ... giving at most `most`
    steps up to `top`, so ticks are whole numbers, never 0.5 wakes."""
    scale = 1
    while True:
        for step in (scale, 2 * scale, 5 * scale):
            if top / step <= most:
                return step
        scale *= 10


def _policy_charts(data: ReportData) -> list[Chart]:
    pol = data.summary["policies"]
    wakes = {name: int(s.get("node_wakes", 0)) for name, s in pol.items()}
    traces = [go.Bar(x=[name], y=[n], name=name, marker={"color": POLICY_COLORS[name]},
                     text=[n], textposition="outside", cliponaxis=False,
                     hovertemplate="%{y} node wakes<extra>" + name + "</extra>")
              for name, n in wakes.items()]
    layout = base_layout("node wakes", time_axis=False, legend=False)
    layout.update({"barmode": "overlay", "xaxis": {"automargin": True, "tickangle": -30}})
    layout["yaxis"].update({"tickformat": "d", "tick0": 0, "dtick": _whole_dtick(max(wakes.values(), default=0)),
                            "rangemode": "tozero"})
    return [Chart("wakes", "policy", "Node wakes", "Times a node was woken from sleep over the run (by the "
                  "plan, or by a node autoscaler adding a node).", go.Figure(traces, layout))]


def _workload_charts(data: ReportData) -> list[Chart]:
    pol = data.summary["policies"]
    names = [n for n, s in pol.items() if s.get("by_workload")]
    if not names:
        return []
    workloads = list(pol[names[0]]["by_workload"])
    dropped_share, frames, energy = {}, {}, {}
    for name in names:
        bw = pol[name]["by_workload"]
        dropped_share[name] = [round(1.0 - bw[w]["sla_attainment"], 9) or None for w in workloads]
        frames[name] = [[round(bw[w]["frames_processed"]), round(bw[w]["frames_demanded"])] for w in workloads]
        if all(bw[w]["energy_kwh"] is not None for w in workloads):
            energy[name] = [round(bw[w]["energy_kwh"], 4) for w in workloads] + [
                round(pol[name].get("energy_kwh_without_pods") or 0.0, 4)]
    dropped = _log_points(workloads, dropped_share, "dropped, share of demand", "~%",
                          "%{y:.3%} dropped (%{customdata[0]:,} of %{customdata[1]:,} frames processed)", frames)
    charts = [Chart("workload-dropped", "workload", "Frames dropped per workload",
                    "Share of each workload's demanded frames not processed (its SLA attainment is 100% minus this), "
                    "a point per policy on a log scale; no point: none dropped.", dropped)]
    if energy:
        note = ("Each node's energy shared among the pods on it by each pod's share of the node's CPU at full load; "
                "nodes without pods (kept on idle, asleep, waking) apart. Each policy's bars add up to its total.")
        charts.append(Chart("workload-energy", "workload", "Energy per workload", note,
                            _bars(workloads + [NO_PODS], energy, "kWh", hover="%{y:,.2f} kWh")))
    return charts


def _zone_charts(data: ReportData) -> list[Chart]:
    pol = data.summary["policies"]
    zones = data.summary["scenario"]["zones"]
    energy = {n: [round(s["energy_kwh_by_zone"].get(z, 0.0), 4) for z in zones] for n, s in pol.items()
              if "energy_kwh_by_zone" in s}
    carbon = {n: [round(s["carbon_kg_by_zone"].get(z, 0.0), 4) for z in zones] for n, s in pol.items()
              if "carbon_kg_by_zone" in s}
    if not energy:
        return []
    return [Chart("zone-energy", "zone", "Energy per grid zone", "Energy of the nodes in each zone over the run.",
                  _bars(zones, energy, "kWh", hover="%{y:,.2f} kWh")),
            Chart("zone-carbon", "zone", "Carbon per grid zone", "Energy times the zone's carbon intensity at the time.",
                  _bars(zones, carbon, "kg CO2eq", hover="%{y:,.3f} kg CO2eq"))]


def build_charts(data: ReportData) -> list[Chart]:
    return _time_charts(data) + _policy_charts(data) + _workload_charts(data) + _zone_charts(data)
