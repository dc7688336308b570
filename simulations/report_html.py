"""`report.html`: one self-contained page (inline SVG, no external resources)."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

import numpy as np

from wattwise.simulations.headline import format_headline
from wattwise.simulations.recorder import SERIES_BUCKET_S
from wattwise.simulations.svg import line_chart
from wattwise.simulations.table import rows

STYLE = ("body{font-family:sans-serif;margin:24px;max-width:1000px}table{border-collapse:collapse;font-size:12px}"
         "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}td:first-child{text-align:left}"
         "pre{background:#f6f6f6;padding:8px;font-size:11px;overflow:auto}")


def write_report(result, out_dir: Path) -> Path:
    series = {name: rec.series() for name, rec in result.recorders.items()}
    any_series = next(iter(series.values()))
    n = len(any_series["power_w"])
    x_h = np.arange(n) * SERIES_BUCKET_S / 3600.0
    bucket_h = SERIES_BUCKET_S / 3600.0
    charts = []
    demand = any_series["demand_fps"]
    charts.append(line_chart("Demand vs capacity (all workloads)", x_h,
                             {"demand": demand, **{f"capacity {k}": v["capacity_fps"] for k, v in series.items()}},
                             "frames/s"))
    charts.append(line_chart("Cluster power", x_h, {k: v["power_w"] / 1000 for k, v in series.items()}, "kW"))
    inputs = result.inputs
    per = max(1, int(round(SERIES_BUCKET_S / inputs.step_s)))
    ci = inputs.carbon_g_per_kwh[: n * per]
    pad = n * per - len(ci)
    if pad > 0:
        ci = np.vstack([ci, np.repeat(ci[-1:], pad, axis=0)])
    ci = ci.reshape(n, per, -1).mean(axis=1)
    charts.append(line_chart("Carbon intensity per zone", x_h, {z: ci[:, i] for i, z in enumerate(result.zones)},
                             "gCO2eq/kWh"))
    for name, v in series.items():
        charts.append(line_chart(f"Replicas per node class: {name}", x_h,
                                 {c: v["replicas_by_class"][:, i] for i, c in enumerate(result.class_names)},
                                 "replicas", height=200, stacked=True))
    charts.append(line_chart("Cumulative energy", x_h,
                             {k: np.cumsum(v["power_w"]) * bucket_h / 1000 for k, v in series.items()}, "kWh"))
    charts.append(line_chart("Cumulative carbon", x_h,
                             {k: np.cumsum(v["carbon_g_per_h"]) * bucket_h / 1000 for k, v in series.items()}, "kgCO2eq"))
    table = rows(result.summary)
    html_rows = "".join("<tr>" + "".join(f"<{'th' if i == 0 else 'td'}>{escape(c)}</{'th' if i == 0 else 'td'}>"
                                         for c in r) + "</tr>" for i, r in enumerate(table))
    sc = result.summary["scenario"]
    body = [f"<h1>WattWise simulation: {escape(sc['name'])}</h1>",
            f"<p>{sc['nodes']} nodes, {sc['workloads']} workloads, objective {escape(sc['objective'])}; "
            f"{result.summary['inputs']['days']} days at {result.summary['inputs']['step_s']} s steps; carbon from "
            f"{escape(inputs.carbon_start)}, demand from {escape(inputs.demand_start)}.</p>",
            "<h2>Summary</h2>", *[f"<p>{escape(line)}</p>" for line in format_headline(result.summary["headline"])],
            f"<table>{html_rows}</table>",
            "<p>Ratios: total energy and carbon relative to the best peer that meets the SLA (named in the "
            "header); total energy relative to <b>oracle</b>.</p>", "<h2>Charts</h2>", *[f"<div>{c}</div>" for c in charts],
            "<h2>Inputs</h2>", f"<pre>{escape(json.dumps(result.summary['inputs'], indent=2, default=str))}</pre>"]
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>WattWise simulation</title>"
            f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>\n")
    path = out_dir / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
