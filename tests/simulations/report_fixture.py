"""A small real run (two zones, two workloads, every policy, 2.4 simulated hours) and its
report.html, shared by the report tests; and the figures read back from the page."""

import copy
import json
import re
from pathlib import Path

import yaml

from wattwise.simulations.policies import POLICY_NAMES
from wattwise.simulations.report_html import write_report
from wattwise.simulations.run import simulate, write_summary

from .helpers import ONE_NODE

FIGURE = re.compile(r"<script type='application/json' class='ww-figure' data-target='([^']+)'>(.*?)</script>", re.S)


def two_zone_spec() -> dict:
    spec = copy.deepcopy(ONE_NODE)
    spec["name"] = "two-zones"
    spec["zones"] = {"za": {"carbon_g_per_kwh": 200}, "zb": {"carbon_g_per_kwh": 400}}
    spec["nodes"] = [{"name_prefix": "a", "class": "plain", "zone": "za", "count": 2},
                     {"name_prefix": "b", "class": "plain", "zone": "zb", "count": 1}]
    cam = dict(spec["workloads"][0], max_replicas=3)
    spec["workloads"] = [cam, dict(cam, name="door", streams=1)]
    return spec


def run_and_report(folder: Path):
    """(SimResult, report path, page text)."""
    folder.mkdir(parents=True, exist_ok=True)
    scenario = folder / "two-zones.yaml"
    scenario.write_text(yaml.safe_dump(two_zone_spec()))
    result = simulate(scenario, list(POLICY_NAMES), days=0.1, step_s=60)
    out = folder / "out"
    write_summary(result, out)
    path = write_report(result, out)
    return result, path, path.read_text(encoding="utf-8")


def figures(page: str) -> dict[str, dict]:
    """Element id -> the figure's JSON, as the page hands it to Plotly.newPlot."""
    return {fid: json.loads(text) for fid, text in FIGURE.findall(page)}
