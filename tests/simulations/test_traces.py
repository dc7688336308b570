"""Readers on the bundled and the real shared traces."""

import numpy as np
import pandas as pd
import pytest

from wattwise.models.errors import InvalidInputError
from wattwise.models.scenario import load_scenario
from wattwise.simulations.inputs import build_inputs
from wattwise.simulations.traces import load_carbon_trace, load_demand_trace

from .conftest import REPO, SCENARIO


def test_bundled_carbon_is_two_weeks_hourly():
    tr = load_carbon_trace(REPO / "data" / "carbon" / "GB_2023-06.csv")
    assert len(tr.g_per_kwh) == 14 * 24 and tr.step_s == 3600 and tr.gaps_filled == 0
    assert tr.times[0] == pd.Timestamp("2023-06-01T00:00Z")


def test_gaps_are_filled_and_counted(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("time,g\n2023-01-01T00:00Z,100\n2023-01-01T01:00Z,\n2023-01-01T03:00Z,300\n")
    tr = load_carbon_trace(p)
    assert tr.gaps_filled == 2                   # one empty value, one missing row
    assert (tr.report.missing_values, tr.report.missing_rows) == (1, 1)
    assert list(tr.g_per_kwh) == [100, 100, 100, 300]


def test_event_trace_is_counted_per_hour(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("t,x\n2024-01-01 00:10:00,1\n2024-01-01 00:20:00,5\n2024-01-01 01:30:00,2\n2024-01-01 01:40:00,7\n"
                 "2024-01-01 01:45:00,3\n")
    tr = load_demand_trace(p)
    assert tr.mode == "events" and list(tr.rate) == [2, 3]


def test_value_trace_is_read_as_values(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("t,requests\n" + "".join(f"2024-01-01T{h:02d}:00Z,{h * 10}\n" for h in range(6)))
    tr = load_demand_trace(p)
    assert tr.mode == "values" and tr.interval_s == 3600 and list(tr.rate) == [0, 10, 20, 30, 40, 50]


def test_gap_counts_reach_the_summary(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("time,g\n" + "".join(f"2023-06-01T{h:02d}:00Z,{'' if h == 5 else 100 + h}\n" for h in range(24)))
    scenario = load_scenario(SCENARIO)
    inputs = build_inputs(scenario, carbon_csv={"uk-south-1a": str(p)}, start="2023-06-01", days=0.5, step_s=600)
    info = inputs.described["carbon"]["uk-south-1a"]
    assert (info["gaps_filled"], info["missing_values"], info["missing_rows"]) == (1, 1, 0)
    assert inputs.carbon_g_per_kwh[5 * 6, inputs.zones.index("uk-south-1a")] == 104   # held from 04:00


def test_not_a_trace_is_a_clear_error(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("a,b,c\n1,2,3\n4,5,6\n")
    with pytest.raises(InvalidInputError, match="two-column"):
        load_carbon_trace(p)


def test_real_shared_traces_load(shared_data):
    tr = load_carbon_trace(shared_data / "carbon" / "SG_2023_hourly.csv")
    assert len(tr.g_per_kwh) == 8760
    d = load_demand_trace(shared_data / "demand" / "alibaba_genai_lora_request_trace.csv")
    assert d.mode == "events" and d.rows > 26000 and np.max(d.rate) > 100
