"""CSV traces: the real Electricity Maps data-portal exports, gaps, two-column files, replay."""

from pathlib import Path

import pandas as pd
import pytest

from wattwise.telemetry.carbon.csv_provider import CsvTraceProvider
from wattwise.telemetry.carbon.csv_trace import load_carbon_trace
from wattwise.telemetry.carbon.errors import CarbonProviderError

DATA = Path("/work/shared/data/carbon")
DE = DATA / "DE-LU_2023_hourly.csv"
JAN1_S = pd.Timestamp("2023-01-01T00:00Z").timestamp()

pytestmark = pytest.mark.skipif(not DE.exists(), reason="shared carbon data not mounted")


def test_de_lu_2023_is_a_full_hourly_year():
    series, report = load_carbon_trace(DE)
    assert len(series) == 8760 and report.rows_read == 8760
    assert report.gaps_filled == 0 and report.step_s == 3600.0
    assert str(series.index.tz) == "UTC"
    assert series.index[0] == pd.Timestamp("2023-01-01T00:00Z")
    assert series.index[-1] == pd.Timestamp("2023-12-31T23:00Z")
    assert series.iloc[0] == 185.8 and series.iloc[-1] == 178.79
    assert report.column == "Carbon Intensity gCO₂eq/kWh (LCA)"


def test_direct_column_by_option():
    series, report = load_carbon_trace(DE, column="direct")
    assert series.iloc[0] == 140.51 and report.column.endswith("(direct)")


@pytest.mark.parametrize("name", ["GB_2023_hourly.csv", "SG_2023_hourly.csv",
                                  "US-CAL-CISO_2023_hourly.csv"])
def test_other_shared_traces_load(name):
    series, report = load_carbon_trace(DATA / name)
    assert len(series) == 8760 and report.gaps_filled == 0
    assert series.between(0, 2000).all()


def test_removed_rows_and_blank_values_are_forward_filled_and_counted(tmp_path):
    lines = DE.read_text(encoding="utf-8").splitlines(keepends=True)
    dropped = {"2023-03-10 05:00:00", "2023-03-10 06:00:00", "2023-03-10 07:00:00",
               "2023-12-31 23:00:00"}
    kept = []
    for line in lines:
        if line[:19] in dropped:
            continue
        if line.startswith("2023-06-01 12:00:00"):
            cells = line.split(",")
            cells[5] = ""  # the LCA value
            line = ",".join(cells)
        kept.append(line)
    gappy = tmp_path / "DE-LU_gaps.csv"
    gappy.write_text("".join(kept), encoding="utf-8")

    series, report = load_carbon_trace(gappy)

    assert len(series) == 8759  # the last hour is gone for good: nothing after it to bound it
    assert (report.missing_rows, report.missing_values, report.gaps_filled) == (3, 1, 4)
    assert report.rows_read == 8756
    before = series[pd.Timestamp("2023-03-10T04:00Z")]
    for hour in ("05", "06", "07"):
        assert series[pd.Timestamp(f"2023-03-10T{hour}:00Z")] == before
    assert series[pd.Timestamp("2023-06-01T12:00Z")] == series[pd.Timestamp("2023-06-01T11:00Z")]
    assert pd.Timestamp("2023-03-10T06:00Z") in report.filled_at
    provider = CsvTraceProvider.from_files({"DE": gappy})
    assert provider.gaps_filled == 4


def test_two_column_files_with_and_without_header(tmp_path):
    with_header = tmp_path / "a.csv"
    with_header.write_text("timestamp,g_per_kwh\n2024-01-01T00:00:00Z,100\n"
                           "2024-01-01T01:00:00Z,110\n2024-01-01T03:00:00Z,130\n")
    series, report = load_carbon_trace(with_header)
    assert series.tolist() == [100.0, 110.0, 110.0, 130.0]
    assert report.gaps_filled == 1 and report.column == "g_per_kwh"

    epoch = tmp_path / "b.csv"
    epoch.write_text(f"{JAN1_S + 1800:.0f},7\n{JAN1_S:.0f},5\n{JAN1_S:.0f},6\n")
    series, report = load_carbon_trace(epoch)
    assert series.tolist() == [5.0, 7.0] and report.step_s == 1800.0
    assert report.duplicates_dropped == 1


@pytest.mark.parametrize("text, word", [
    ("a,b,c\n1,2,3\n", "neither"),
    ("t,g_per_kwh\n2024-01-01T00:00Z,1\n2024-01-01T01:00Z,2\n2024-01-01T01:20Z,3\n2024-01-01T01:50Z,4\n",
     "off the"),
    ("t,g_per_kwh\n2024-01-01T00:00Z,x\n2024-01-01T01:00Z,\n", "no numeric value"),
    ("t,g_per_kwh\nnot-a-time,1\n", "unreadable timestamp"),
])
def test_unreadable_files_say_why(tmp_path, text, word):
    bad = tmp_path / "bad.csv"
    bad.write_text(text)
    with pytest.raises(ValueError, match=word):
        load_carbon_trace(bad)


@pytest.mark.parametrize("header", ["renewables_pct", "Renewable Percentage", "moer_lbs_per_mwh", "v", "co2"])
def test_a_value_column_that_is_not_an_intensity_is_refused(tmp_path, header):
    bad = tmp_path / "c.csv"
    bad.write_text(f"timestamp,{header}\n2024-01-01T00:00Z,40\n2024-01-01T01:00Z,41\n")
    with pytest.raises(ValueError, match=f"column '{header}' is not a carbon intensity in g/kWh"):
        load_carbon_trace(bad)


@pytest.mark.parametrize("header", ["g_per_kwh", "carbon_intensity", "gCO2eq/kWh", "gCO₂eq/kWh", "g/kWh",
                                    "Carbon Intensity (g/kWh)", "value"])
def test_intensity_headers_are_read(tmp_path, header):
    good = tmp_path / "c.csv"
    good.write_text(f"timestamp,{header}\n2024-01-01T00:00Z,40\n2024-01-01T01:00Z,41\n", encoding="utf-8")
    series, report = load_carbon_trace(good)
    assert series.tolist() == [40.0, 41.0] and report.column == header


def test_a_column_named_exactly_is_read_whatever_its_header(tmp_path):
    named = tmp_path / "c.csv"
    named.write_text("timestamp,ci_ours\n2024-01-01T00:00Z,40\n2024-01-01T01:00Z,41\n")
    assert load_carbon_trace(named, column="ci_ours")[0].tolist() == [40.0, 41.0]


def test_tokenizer_errors_are_ours_with_the_line(tmp_path):
    bad = tmp_path / "c.csv"
    bad.write_text("timestamp,g_per_kwh\n2024-01-01T00:00Z,40\n2024-01-01T01:00Z,41,7\n")
    with pytest.raises(ValueError) as caught:
        load_carbon_trace(bad)
    assert str(caught.value) == f"{bad}: line 3 has 3 fields where the lines above have 2 (quote a value that holds a comma)"


def test_unknown_column_lists_the_choices():
    with pytest.raises(ValueError, match=r"\(LCA\)"):
        load_carbon_trace(DE, column="marginal")


def test_provider_step_holds_the_hourly_value():
    provider = CsvTraceProvider.from_files({"DE": DE}, forecast_horizon_s=3 * 3600)
    at_0030 = provider.fetch("DE", JAN1_S + 1800)
    assert (at_0030.g_per_kwh, at_0030.at_s, at_0030.source) == (185.8, JAN1_S, "csv-trace")
    assert provider.fetch("DE", JAN1_S + 3600).g_per_kwh == 185.7
    assert [t for t, _ in at_0030.forecast] == [JAN1_S + 3600, JAN1_S + 7200, JAN1_S + 10800]
    assert at_0030.forecast[0][1] == 185.7
    last_hour_s = pd.Timestamp("2023-12-31T23:59:59Z").timestamp()
    assert provider.fetch("DE", last_hour_s).g_per_kwh == 178.79


@pytest.mark.parametrize("zone, now_s, word", [
    ("DE", JAN1_S - 1, "outside"),
    ("DE", pd.Timestamp("2024-01-01T00:00Z").timestamp(), "outside"),
    ("FR", JAN1_S, "no trace for zone 'FR'"),
])
def test_provider_refuses_what_the_trace_does_not_cover(zone, now_s, word):
    provider = CsvTraceProvider.from_files({"DE": DE})
    with pytest.raises(CarbonProviderError, match=word) as caught:
        provider.fetch(zone, now_s)
    assert not caught.value.retryable
