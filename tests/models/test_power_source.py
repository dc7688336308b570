"""A discovered class's power curve: catalogue, then SPECpower by CPU generation, then Kepler fit, then prior."""

import csv
from pathlib import Path

from wattwise.models.power_curve import PowerCurve
from wattwise.models.power_source import (MeasuredCurve, PowerCurveSource, choose_power_curve, cpu_generation)

REPO = Path(__file__).parents[2]


def bundled() -> tuple[MeasuredCurve, ...]:
    """The bundled SPECpower results, with the generation their notes name."""
    out = []
    with open(REPO / "data" / "power" / "specpower_curves.csv", newline="") as f:
        for r in csv.DictReader(f):
            gen = next(g for g in ("Milan", "Cascade Lake", "Ice Lake") if f"({g})" in r["note"])
            loads = [float(r[f"load_{p}_w"]) for p in range(10, 101, 10)]
            out.append(MeasuredCurve(gen, int(r["cores"]), PowerCurve.specpower(float(r["active_idle_w"]), loads)))
    return tuple(out)


PRIOR = PowerCurve.linear(150, 400)
MEASURED = bundled()


def test_nfd_numbers_name_the_generation():
    assert cpu_generation("AuthenticAMD", "25", "1") == "Milan"
    assert cpu_generation("GenuineIntel", "6", "143") == "Sapphire Rapids"
    assert cpu_generation("GenuineIntel", "?", "143") is None


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
