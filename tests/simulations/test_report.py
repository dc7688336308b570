"""report.html, read back as a browser would get it (no browser needed): plotly.js embedded once and
nothing fetched, one colour per policy in every figure, dates on the time axes, the headline
sentence first, the inputs without absolute paths, the results table the command prints."""

import re
from html import unescape
from pathlib import Path

import pandas as pd
import pytest

from wattwise.simulations.policies import POLICY_NAMES
from wattwise.simulations.report_headline import headline_sentence
from wattwise.simulations.report_style import POLICY_COLORS
from wattwise.simulations.table import rows

from .report_fixture import figures, run_and_report

REPO = Path(__file__).resolve().parents[2]
TIME_CHARTS = ("nodes", "power", "sla", "dropped", "demand", "carbon-intensity")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    result, path, page = run_and_report(folder)
    return folder, result, page


def _trace_color(trace: dict) -> str | None:
    return (trace.get("line") or {}).get("color") or (trace.get("marker") or {}).get("color")


def test_plotly_js_is_embedded_once_and_nothing_is_fetched(report):
    _, _, page = report
    assert not re.search(r"<script[^>]+src=", page), "a script loaded from elsewhere"
    assert not re.search(r"<link[^>]+href=", page), "a stylesheet or font loaded from elsewhere"
    assert page.count("* plotly.js v") == 1, "plotly.js must be embedded exactly once"
    assert "Plotly.newPlot" in page


def test_one_colour_per_policy_in_every_figure(report):
    _, _, page = report
    figs = figures(page)
    assert set(TIME_CHARTS) | {"wakes", "workload-dropped", "workload-energy", "zone-energy", "zone-carbon"} <= set(figs)
    seen: dict[str, set] = {}
    for fig in figs.values():
        for trace in fig["data"]:
            color = _trace_color(trace)
            if trace.get("name") in POLICY_NAMES:
                seen.setdefault(trace["name"], set()).add(color)
            else:   # context (demand, zones) never borrows a policy's colour
                assert color not in POLICY_COLORS.values(), trace.get("name")
    assert seen == {name: {POLICY_COLORS[name]} for name in POLICY_NAMES}
    assert len(set(POLICY_COLORS.values())) == len(POLICY_COLORS)
    for name in POLICY_NAMES:   # the results table's swatches too
        assert f"background:{POLICY_COLORS[name]}'></span>{name}<" in page


def test_time_axes_are_dates_on_the_simulated_clock(report):
    _, result, page = report
    figs = figures(page)
    start = pd.Timestamp(result.summary["inputs"]["carbon_start"]).tz_convert(None)
    for fid in TIME_CHARTS:
        layout = figs[fid]["layout"]
        assert layout["xaxis"]["type"] == "date", fid
        assert "UTC" in layout["xaxis"]["title"]["text"]
        x = pd.to_datetime(figs[fid]["data"][0]["x"])
        assert x[0] == start and (x[1] - x[0]) == pd.Timedelta(minutes=15), fid


def test_legends_sit_above_the_plot_and_figures_fit_their_width(report):
    _, _, page = report
    for fid, fig in figures(page).items():
        layout = fig["layout"]
        if layout.get("showlegend", True):
            assert layout["legend"]["orientation"] == "h" and layout["legend"]["yanchor"] == "bottom", fid
        assert "width" not in layout and layout["autosize"], fid


def test_headline_sentence_comes_first(report):
    _, result, page = report
    body = page[page.index("<body>") + len("<body>"):]
    first = re.match(r"<h1 id='headline'>(.*?)</h1>", body)
    assert first, "the page must open with the headline"
    assert unescape(first.group(1)) == headline_sentence(result.summary)
    assert first.group(1).startswith("WattWise used ")


def test_no_absolute_paths_in_the_page(report):
    folder, result, page = report
    absolute = []

    def walk(value):
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v)
        elif isinstance(value, str) and value.startswith("/"):
            absolute.append(value)

    walk(result.summary)
    assert absolute, "the summary names the scenario by its path"
    for path in absolute + [str(folder), str(REPO)]:
        assert path not in page, path
    assert "two-zones.yaml" in page   # by its name


def test_the_results_table_is_the_commands(report):
    _, result, page = report
    for row in rows(result.summary):
        assert all(f">{c}<" in page for c in row[1:]), row


def test_inputs_table_names_traces_by_file_name(tmp_path):
    from wattwise.simulations.report_inputs import input_rows

    summary = {
        "scenario": {"name": "s", "path": "/home/me/s.yaml", "objective": "carbon", "nodes": 2, "workloads": 1,
                     "node_classes": ["c"], "zones": ["z"]},
        "inputs": {"days": 1.0, "steps": 1440, "step_s": 60.0, "seed": 3, "policies": ["wattwise"],
                   "carbon_start": "2023-06-01 00:00:00+00:00", "demand_start": "2024-11-18 00:00:00+00:00",
                   "demand": {"source": "/data/demand/trace.csv", "rows": 10, "mode": "events", "wrapped_samples": {}},
                   "carbon": {"z": {"source": "/data/carbon/DE.csv", "gaps_filled": 2, "mean_g_per_kwh": 300.0}}},
        "policies": {"wattwise": {}},
        "headline": {"peers_were_given": {"keda-tuned": {"targets_fps": {"cam": 9.0}, "taint": "..."}}},
    }
    text = dict(input_rows(summary))
    assert text["scenario"] == "s (s.yaml), objective carbon"
    assert text["demand trace"].startswith("trace.csv (10 rows, events), from 2024-11-18 00:00 UTC")
    assert text["carbon, z"] == "DE.csv, mean 300 gCO2eq/kWh, 2 gaps filled"
    assert text["seed"] == "3" and text["length"].startswith("1 day in 1,440 steps of 60 s")
    assert text["keda-tuned was given"] == "trigger targets cam 9 fps/replica; the GPU taint"
    assert not any(d in "".join(text.values()) for d in ("/home", "/data"))
