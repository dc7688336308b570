"""A discovered class's power curve: catalogue, then SPECpower by CPU generation, then Kepler fit, then prior."""

from pathlib import Path

import pytest

from wattwise.models.errors import InvalidInputError
from wattwise.models.power_curve import PowerCurve
from wattwise.models.power_source import (MeasuredCurve, PowerCurveSource, choose_power_curve, cpu_generation)
from wattwise.models.specpower import parse_specpower_curves

REPO = Path(__file__).parents[2]


def bundled() -> tuple[MeasuredCurve, ...]:
    """The bundled SPECpower results, each with its CPU generation."""
    return parse_specpower_curves((REPO / "telemetry" / "data" / "specpower_curves.csv").read_text())


PRIOR = PowerCurve.linear(150, 400)
MEASURED = bundled()


def test_nfd_numbers_name_the_generation():
    assert cpu_generation("AuthenticAMD", "25", "1") == "Milan"
    assert cpu_generation("GenuineIntel", "6", "143") == "Sapphire Rapids"
    assert cpu_generation("GenuineIntel", "?", "143") is None
    # NFD's cpu-model.vendor_id label gives the short vendor name
    assert cpu_generation("Intel", "6", "106") == "Ice Lake" and cpu_generation("AMD", "25", "17") == "Genoa"


def test_bundled_curves_carry_their_generation():
    got = {(m.generation, m.cores): m.curve for m in MEASURED}
    assert set(got) == {("Milan", 64), ("Milan", 128), ("Cascade Lake", 28), ("Ice Lake", 64), ("Ice Lake", 80)}
    assert got[("Milan", 64)].idle_w == 56.8 and got[("Milan", 64)].max_w == 268.0
    assert all(m.curve.sleep_w == 0.0 for m in MEASURED)   # SPECpower measures no standby


def test_a_bad_curves_file_names_line_and_column():
    header = "generation,cores,active_idle_w," + ",".join(f"load_{p}_w" for p in range(10, 101, 10))
    loads = ",".join(str(100 + p) for p in range(10))
    with pytest.raises(InvalidInputError, match=r"curves.csv:3.active_idle_w: not a number: 'n/a'"):
        parse_specpower_curves(f"{header}\nMilan,64,50,{loads}\nMilan,64,n/a,{loads}\n", "curves.csv")
    with pytest.raises(InvalidInputError, match="missing column"):
        parse_specpower_curves("cores,active_idle_w\n64,50\n")
    assert parse_specpower_curves(f"{header}\n,64,50,{loads}\n") == ()   # no generation: cannot be matched


def test_order_catalogue_specpower_fit_prior():
    mine = PowerCurve.linear(90, 300)
    fit = PowerCurve.linear(120, 350)
    got = choose_power_curve("milan-snp", "Milan", 64, {"milan-snp": mine}, MEASURED, {"milan-snp": fit}, PRIOR)
    assert (got.curve, got.source) == (mine, PowerCurveSource.CATALOGUE)
    got = choose_power_curve("milan-snp", "Milan", 64, {}, MEASURED, {"milan-snp": fit}, PRIOR)
    assert got.source is PowerCurveSource.SPECPOWER
    assert got.curve.idle_w == 56.8 and got.curve.max_w == 268.0   # the 64-core 1S result, unscaled
    got = choose_power_curve("spr-tdx", "Sapphire Rapids", 96, {}, MEASURED, {"spr-tdx": fit}, PRIOR)
    assert (got.curve, got.source) == (fit, PowerCurveSource.KEPLER_FIT)   # no SPR curve is bundled
    got = choose_power_curve("spr-tdx", "Sapphire Rapids", 96, {}, MEASURED, {}, PRIOR)
    assert (got.curve, got.source) == (PRIOR, PowerCurveSource.PRIOR)


def test_nearest_core_count_scaled_linearly():
    got = choose_power_curve("icx", "Ice Lake", 32, {}, MEASURED, {}, PRIOR)
    assert "64 cores, scaled to 32" in got.note
    assert abs(got.curve.idle_w - 137.0 / 2) < 1e-9
