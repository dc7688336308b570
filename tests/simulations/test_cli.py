"""The command: real traces through --demand and --carbon, one-line errors, the outputs."""

import json
import re

import pytest

from wattwise.cli import main

from .conftest import SCENARIO


def test_real_traces_through_the_command(shared_data, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["simulate", "--scenario", str(SCENARIO), "--days", "0.05", "--step-s", "60",
               "--policies", "default,peaks",
               "--demand", str(shared_data / "demand" / "alibaba_genai_lora_request_trace.csv"),
               "--demand-start", "2024-11-20",
               "--carbon", f"uk-south-1a={shared_data / 'carbon' / 'SG_2023_hourly.csv'}",
               "--carbon", f"eu-central-1a={shared_data / 'carbon' / 'DE-LU_2023_hourly.csv'}",
               "--carbon", f"us-west-1a={shared_data / 'carbon' / 'US-CAL-CISO_2023_hourly.csv'}",
               "--start", "2023-03-01", "--out", str(out)])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["policies"]) == {"default", "peaks"}
    assert "SG_2023_hourly.csv" in summary["inputs"]["carbon"]["uk-south-1a"]["source"]
    assert summary["inputs"]["demand_start"].startswith("2024-11-20")
    for s in summary["policies"].values():
        assert s["frames_demanded"] > 0 and s["confidentiality_violations"] == 0
    html = (out / "report.html").read_text()
    assert "class='ww-figure'" in html                     # the charts, as figure JSON plotly draws
    assert not re.search(r"<script[^>]+src=", html)          # plotly.js embedded: opens offline
    assert "default" in capsys.readouterr().out


@pytest.mark.parametrize("args, fragment", [
    (["--policies", "default,nope"], "--policies"),
    (["--carbon", "nowhere"], "--carbon"),
    (["--carbon", "mars-1a=x.csv"], "unknown zone"),
    (["--demand", "/nonexistent/demand.csv"], "no such file"),
    (["--start", "yesterday-ish"], "--start"),
    (["--start", "2020-01-01"], "outside the trace"),
    (["--days", "-1"], "--days"),
])
def test_bad_flags_give_one_line_errors(args, fragment, tmp_path, capsys):
    rc = main(["simulate", "--scenario", str(SCENARIO), "--days", "0.01", "--out", str(tmp_path), *args]
              if "--days" not in args else ["simulate", "--scenario", str(SCENARIO), "--out", str(tmp_path), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and fragment in err[0], err
