"""`wattwise simulate` on bad input: one line naming what was wrong and what to do, exit code 2,
before any policy runs."""

import os
from pathlib import Path

import pytest

from wattwise.cli import main
from wattwise.simulations import run as sim_run

from .conftest import SCENARIO
from .helpers import ONE_NODE, write_scenario

TS = "".join(f"2023-06-01T{h:02d}:00Z,{100 + h}\n" for h in range(24))


@pytest.fixture(autouse=True)
def no_simulation(monkeypatch):
    """Every case here must be refused before the (minutes-long) run starts."""
    def refuse(*args, **kwargs):
        raise AssertionError("the simulation ran")

    monkeypatch.setattr(sim_run, "run_policy", refuse)


def simulate_error(capsys, *args) -> str:
    rc = main(["simulate", "--scenario", str(SCENARIO), "--days", "0.01", "--policies", "default", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    return err[0]


def test_out_is_a_file(tmp_path, capsys):
    out = tmp_path / "results.json"
    out.write_text("{}")
    assert simulate_error(capsys, "--out", str(out)) == (
        f"wattwise simulate: error: --out: {out} is a file, not a folder "
        "(give a folder for summary.json and report.html)")
    assert out.read_text() == "{}"


def test_out_under_a_file(tmp_path, capsys):
    parent = tmp_path / "f"
    parent.write_text("")
    assert simulate_error(capsys, "--out", str(parent / "sub")) == (
        f"wattwise simulate: error: --out: {parent} is a file, so {parent / 'sub'} cannot be a folder "
        "(choose another --out)")


def test_out_not_writable(tmp_path, capsys):
    if os.geteuid() == 0:     # root writes through file modes; sysfs refuses new files even to root
        parent = Path("/sys")
    else:
        parent = tmp_path / "ro"
        parent.mkdir(mode=0o500)
    line = simulate_error(capsys, "--out", str(parent / "wattwise-sim"))
    assert line.startswith(f"wattwise simulate: error: --out: cannot write in {parent}: ")
    assert line.endswith("(choose a folder you can write to)")
    assert not (parent / "wattwise-sim").exists()


@pytest.mark.parametrize("value", ["0", "-5", "0.001", "0.99", "3601"])
def test_step_s_out_of_range(tmp_path, capsys, value):
    assert simulate_error(capsys, "--out", str(tmp_path), "--step-s", value) == (
        f"wattwise simulate: error: --step-s: must be at least 1 and at most 3600 seconds, got {float(value):g}")


def test_the_scenario_files_step_s_is_held_to_the_same_bounds(tmp_path, capsys):
    path = write_scenario(tmp_path, {**ONE_NODE, "simulation": {"days": 7, "step_s": 0.001}})
    rc = main(["simulate", "--scenario", str(path), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == [f"wattwise simulate: error: {path}: simulation.step_s: must be at least 1 and at "
                               "most 3600 seconds, got 0.001"]


def test_more_steps_than_a_run_should_take_are_refused(tmp_path, capsys):
    assert simulate_error(capsys, "--out", str(tmp_path), "--days", "30", "--step-s", "1") == (
        "wattwise simulate: error: --days: 30 days in 1 s steps is 2,592,000 steps, more than 2,000,000 "
        "(simulate fewer days or use a longer step)")


def test_a_demand_profile_peaking_below_its_floor_is_refused(tmp_path, capsys):
    workload = {**ONE_NODE["workloads"][0], "demand_profile": {"peak_streams": 4, "floor_streams": 56}}
    path = write_scenario(tmp_path, {**ONE_NODE, "workloads": [workload]})
    rc = main(["simulate", "--scenario", str(path), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == [f"wattwise simulate: error: {path}: workloads.0: workload 'cam': "
                               "demand_profile.peak_streams (4) is below demand_profile.floor_streams (56)"]


def test_carbon_column_that_is_not_an_intensity(tmp_path, capsys):
    csv = tmp_path / "ren.csv"
    csv.write_text("timestamp,renewables_pct\n" + TS)
    assert simulate_error(capsys, "--out", str(tmp_path / "o"), "--carbon", f"uk-south-1a={csv}") == (
        f"wattwise simulate: error: {csv}: column 'renewables_pct' is not a carbon intensity in g/kWh "
        "(give a file whose value column is one, named e.g. g_per_kwh, carbon_intensity or gCO2eq/kWh)")


@pytest.mark.parametrize("text, column", [
    ("streams\n10\n12\n14\n", "streams"),
    ("requests,streams\n10,1\n12,2\n14,3\n", "requests"),
])
def test_demand_without_a_timestamp_column(tmp_path, capsys, text, column):
    csv = tmp_path / "demand.csv"
    csv.write_text(text)
    assert simulate_error(capsys, "--out", str(tmp_path / "o"), "--demand", str(csv)) == (
        f"wattwise simulate: error: {csv}: no timestamp column: the first column, {column!r}, holds plain "
        "numbers (put the time first: ISO 8601, naive = UTC, or Unix seconds under a header such as timestamp)")


def test_unix_seconds_under_a_time_header_are_still_read(tmp_path):
    from wattwise.simulations.traces import load_demand_trace

    csv = tmp_path / "demand.csv"
    csv.write_text("timestamp,requests\n" + "".join(f"{1700000000 + 3600 * h},{h}\n" for h in range(4)))
    assert load_demand_trace(csv).start.year == 2023


def test_headerless_iso_demand_keeps_its_first_row(tmp_path):
    from wattwise.simulations.traces import load_demand_trace

    csv = tmp_path / "demand.csv"
    csv.write_text("".join(f"2024-01-01T{h:02d}:00Z,{h + 1}\n" for h in range(4)))
    trace = load_demand_trace(csv)
    assert trace.rows == 4 and list(trace.rate) == [1, 2, 3, 4]


def test_tokenizer_errors_name_the_line(tmp_path, capsys):
    demand = tmp_path / "demand.csv"
    demand.write_text("timestamp,requests\n2024-11-20T00:00Z,1\n2024-11-20T01:00Z,2,9\n2024-11-20T02:00Z,3\n")
    assert simulate_error(capsys, "--out", str(tmp_path / "o"), "--demand", str(demand)) == (
        f"wattwise simulate: error: {demand}: line 3 has 3 fields where the lines above have 2 "
        "(quote a value that holds a comma)")
    carbon = tmp_path / "carbon.csv"
    carbon.write_text('time,g_per_kwh\n2023-06-01T00:00Z,1\n2023-06-01T01:00Z,"2\n2023-06-01T02:00Z,3\n')
    assert simulate_error(capsys, "--out", str(tmp_path / "o"), "--carbon", f"uk-south-1a={carbon}") == (
        f"wattwise simulate: error: {carbon}: line 3 opens a quoted value that is never closed")


def test_days_shorter_than_a_step(tmp_path, capsys):
    rc = main(["simulate", "--scenario", str(SCENARIO), "--days", "0.0001", "--step-s", "60", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == ["wattwise simulate: error: --days: 0.0001 days is less than one 60 s step "
                               "(simulate longer)"]


def test_missing_scheduler_config(tmp_path, capsys):
    assert simulate_error(capsys, "--out", str(tmp_path), "--scheduler-config", str(tmp_path / "nope.yaml")) == (
        f"wattwise simulate: error: --scheduler-config: no such file: {tmp_path / 'nope.yaml'}")
