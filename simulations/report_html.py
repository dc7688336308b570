"""`report.html`: one self-contained page (plotly.js embedded once, nothing fetched, so it opens
offline): the headline sentence, the results table the command prints, the charts
(`report_figures.py`) and the inputs (`report_inputs.py`).

Each figure's JSON sits in its own `<script type="application/json" class="ww-figure">` block,
drawn by one small script with `Plotly.newPlot`, so the figures can be read back (tests do)."""

from __future__ import annotations

from html import escape
from pathlib import Path

import numpy as np
import plotly.io as pio
from plotly.offline import get_plotlyjs

from wattwise.simulations.report_figures import Chart, ReportData, build_charts
from wattwise.simulations.report_headline import headline_sentence
from wattwise.simulations.report_inputs import days, input_rows, when
from wattwise.simulations.report_style import POLICY_COLORS
from wattwise.simulations.table import rows

STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif;margin:0 auto;
  padding:16px 20px 40px;max-width:1200px;color:#222;line-height:1.4}
h1{font-size:clamp(1.1rem,1.6vw + .6rem,1.45rem);line-height:1.35;font-weight:600;margin:8px 0 6px}
h2{font-size:1.15rem;margin:32px 0 4px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:1rem;margin:0}
.sub,.note{color:#555;font-size:.85rem;margin:2px 0 6px}
.scroll{overflow-x:auto}
table{border-collapse:collapse;font-size:.8rem;margin:8px 0}
td,th{border:1px solid #d5d5d5;padding:3px 7px;text-align:right;white-space:nowrap}
th{background:#f4f4f4;white-space:normal;vertical-align:bottom}
td:first-child,th:first-child{text-align:left}
table.inputs td{text-align:left;white-space:normal}
table.inputs td:first-child{white-space:nowrap;font-weight:600}
.swatch{display:inline-block;width:.8em;height:.8em;border-radius:2px;margin-right:5px;vertical-align:-1px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,520px),1fr));gap:8px 24px}
.chart{margin:14px 0 0;min-width:0}
.plot{width:100%}
"""

# Draws each figure from its JSON, then keeps its plot area at least MIN_PLOT_PX tall: where a
# narrow window makes the legend wrap into more rows, the figure grows instead of the plot shrinking.
DRAW = """
var MIN_PLOT_PX = 200;
function fitHeight(gd) {
  var size = gd._fullLayout && gd._fullLayout._size;
  if (!size) return;
  var base = +gd.dataset.baseHeight, now = gd._fullLayout.height;
  var want = Math.max(base, Math.round(now + MIN_PLOT_PX - size.h));
  if (Math.abs(want - now) > 2) Plotly.relayout(gd, {height: want});
}
var plots = [];
document.querySelectorAll('script.ww-figure').forEach(function (el) {
  var fig = JSON.parse(el.textContent), gd = document.getElementById(el.dataset.target);
  gd.dataset.baseHeight = fig.layout.height;
  plots.push(gd);
  Plotly.newPlot(gd, fig.data, fig.layout, {responsive: true, displayModeBar: false}).then(fitHeight);
});
var resizing;
window.addEventListener('resize', function () {
  clearTimeout(resizing);
  resizing = setTimeout(function () { plots.forEach(fitHeight); }, 250);
});
"""

SECTIONS = (("time", "Over time", False), ("policy", "Per policy", True), ("workload", "Per workload", True),
            ("zone", "Per grid zone", True))


def report_data(result) -> ReportData:
    """The series the charts need from a `SimResult`: each policy's 15-minute series and each
    zone's carbon intensity averaged over the same buckets."""
    series = {name: rec.series() for name, rec in result.recorders.items()}
    any_series = next(iter(series.values()))
    n = len(any_series["power_w"])
    inputs = result.inputs
    per = max(1, int(round(any_series["bucket_s"][0] / inputs.step_s))) if n else 1
    ci = inputs.carbon_g_per_kwh
    carbon = {}
    for i, zone in enumerate(result.zones):
        sums = np.add.reduceat(ci[:, i], np.arange(0, len(ci), per))[:n]
        counts = np.add.reduceat(np.ones(len(ci)), np.arange(0, len(ci), per))[:n]
        carbon[zone] = sums / counts
    return ReportData(result.summary, series, carbon)


def _table(table: list[list[str]], cls: str = "") -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in table[0])
    body = "".join("<tr>" + "".join(f"<td>{_policy_cell(c) if i == 0 else escape(c)}</td>" for i, c in enumerate(r))
                   + "</tr>" for r in table[1:])
    return f"<div class='scroll'><table class='{cls}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def _policy_cell(name: str) -> str:
    color = POLICY_COLORS.get(name)
    swatch = f"<span class='swatch' style='background:{color}'></span>" if color else ""
    return swatch + escape(name)


def _inputs_table(summary: dict) -> str:
    body = "".join(f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in input_rows(summary))
    return f"<div class='scroll'><table class='inputs'><tbody>{body}</tbody></table></div>"


def _chart(chart: Chart) -> str:
    fig_json = pio.to_json(chart.figure, validate=False).replace("</", "<\\/")
    return (f"<div class='chart'><h3>{escape(chart.title)}</h3><p class='note'>{escape(chart.note)}</p>"
            f"<div class='plot' id='{chart.id}'></div>"
            f"<script type='application/json' class='ww-figure' data-target='{chart.id}'>{fig_json}</script></div>")


def _clock_note(inputs: dict) -> str:
    note = (f"Times are the simulated clock, the carbon traces' from {when(inputs['carbon_start'])}; each point is "
            "the 15 minutes that start there.")
    if when(inputs["demand_start"]) != when(inputs["carbon_start"]):
        note += f" Demand is replayed at the same offsets from {when(inputs['demand_start'])}."
    return note + (" Drag across a chart to zoom in, double-click to zoom out; click a name in a legend to hide "
                   "or show it.")


def render_page(data: ReportData) -> str:
    summary = data.summary
    sc, inputs = summary["scenario"], summary["inputs"]
    charts = build_charts(data)
    body = [f"<h1 id='headline'>{escape(headline_sentence(summary))}</h1>",
            f"<p class='sub'>WattWise simulation of {escape(sc['name'])}: {sc['nodes']} nodes, {sc['workloads']} "
            f"workloads, objective {escape(sc['objective'])}; {days(inputs['days'])} from "
            f"{escape(when(inputs['carbon_start']))} at {inputs['step_s']:g} s steps. Peers are the policies other than "
            "wattwise and oracle; the SLA is met at 99.9% of frames processed; the oracle knows the coming demand "
            "and switches instantly, a near-lower bound.</p>",
            "<h2>Results</h2>", _table(rows(summary)),
            "<p class='note'>The table <code>wattwise simulate</code> prints. Ratios: total energy and carbon relative "
            "to the best peer meeting the SLA (named in the header); total energy relative to the oracle.</p>"]
    for key, title, grid in SECTIONS:
        part = [_chart(c) for c in charts if c.section == key]
        if not part:
            continue
        body.append(f"<h2>{title}</h2>")
        if key == "time":
            body.append(f"<p class='note'>{escape(_clock_note(inputs))}</p>")
        body.append(f"<div class='{'grid' if grid else 'stack'}'>{''.join(part)}</div>")
    body += ["<h2>Inputs</h2>", _inputs_table(summary)]
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>WattWise simulation: {escape(sc['name'])}</title><style>{STYLE}</style>"
            "<script type='text/javascript'>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>"
            f"<script charset='utf-8' type='text/javascript'>{get_plotlyjs()}</script></head>"
            f"<body>{''.join(body)}<script type='text/javascript'>{DRAW}</script></body></html>\n")


def write_report(result, out_dir: Path) -> Path:
    path = out_dir / "report.html"
    path.write_text(render_page(report_data(result)), encoding="utf-8")
    return path
