"""Node power from Kepler's counters on real measurements (tests/data/SOURCES.md), chronological split.

Kepler's own models on this machine report package-power MAE of 4-5 W (gradient boosting, random
split). Target for WattWise: package MAPE at most 5% on the later part of the run. Measured (see
the assertion bounds): MAPE about 7.5%, median error about 4.4%, MAE about 6.7 W; the 5% target is
not reached on a chronological split, where the last 30% holds stress phases the first 70% saw
less of. The bounds below pin today's figures so a regression fails.
"""

from pathlib import Path

import pandas as pd
import pytest

from wattwise.telemetry.node_power_fit import fit_chronological

DATA = Path(__file__).resolve().parents[1] / "data" / "kepler_nx12_counters_power.csv"


@pytest.fixture(scope="module")
def nx12():
    return pd.read_csv(DATA)


def test_package_power_on_the_later_part(nx12):
    fit = fit_chronological(nx12, "package_power", train_fraction=0.7)
    print(f"package: MAE {fit.mae_w:.2f} W, MAPE {100 * fit.mape:.2f}%, median APE {100 * fit.median_ape:.2f}% "
          f"on {fit.n_test} later samples (Kepler published MAE 4-5 W)")
    assert fit.n_test == 661
    assert fit.mae_w < 7.0 and fit.mape < 0.08 and fit.median_ape < 0.05


def test_platform_power_on_the_later_part(nx12):
    fit = fit_chronological(nx12, "platform_power", train_fraction=0.7)
    print(f"platform: MAE {fit.mae_w:.2f} W, MAPE {100 * fit.mape:.2f}%")
    assert fit.mape < 0.06


def test_counters_beat_a_constant(nx12):
    fit = fit_chronological(nx12, "package_power", train_fraction=0.7)
    later = nx12.sort_values("timestamp")["package_power"].iloc[fit.n_train:]
    constant_mae_w = (later - nx12["package_power"].iloc[:fit.n_train].mean()).abs().mean()
    assert fit.mae_w < constant_mae_w / 4
