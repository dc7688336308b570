"""Node power from Kepler's counters on real measurements (tests/data/SOURCES.md), chronological split.

The model is chosen by blocked cross-validation inside the first 70% of the run, then scored once
on the later 30% (`wattwise.telemetry.node_power_fit`). Measured that way (issue 14), the chosen
model (gradient boosting, depth 3, on the counters, the previous and next samples' cycles and the
60 s peak of cycles, for both targets) scores package MAPE 8.70% (MAE 6.7 W) and platform (ACPI)
MAPE 3.94% (MAE 10.2 W) on the later part. The 3% goal is not met. The earlier figures, 4.80% and 3.22%,
came from a feature map picked while the later part was in view. The bounds below pin today's
honest figures with some margin, so a regression fails. `benchmarks/node_power_accuracy.py`
prints every candidate's cross-validated MAPE.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from wattwise.telemetry import node_power_fit
from wattwise.telemetry.node_power_fit import (BASELINE, CANDIDATES, COUNTER_COLUMNS, blocked_folds,
                                               fit_chronological, steady_intervals)

DATA = Path(__file__).resolve().parents[1] / "data" / "kepler_nx12_counters_power.csv"
pytestmark = pytest.mark.slow   # each chronological fit cross-validates every candidate (~10-20 s)


@pytest.fixture(scope="module")
def nx12():
    return pd.read_csv(DATA).sort_values("timestamp").reset_index(drop=True)


def fit_seen(nx12, target):
    """`target` fitted, with what `select_model` was handed recorded."""
    seen = []
    real = node_power_fit.select_model

    def spy(train, target, *args, **kwargs):
        seen.append((target, train.copy()))
        return real(train, target, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(node_power_fit, "select_model", spy)
        return fit_chronological(nx12, target, train_fraction=0.7), seen


# One fixture per target, so the first test of each carries one target's cross-validation, not both
# (~70 s of CPU each with 23 candidates; the pytest timeout is per test).
@pytest.fixture(scope="module")
def package_fit(nx12):
    return fit_seen(nx12, "package_power")


@pytest.fixture(scope="module")
def platform_fit(nx12):
    return fit_seen(nx12, "platform_power")


@pytest.fixture(scope="module")
def fits(package_fit, platform_fit):
    """Both targets' fits, and what `select_model` was handed, in order."""
    return ({"package_power": package_fit[0], "platform_power": platform_fit[0]}, package_fit[1] + platform_fit[1])


def test_package_power_on_the_later_part(package_fit):
    fit = package_fit[0]
    print(f"package: {fit.chosen.name}: MAPE {100 * fit.mape:.2f}%, median APE {100 * fit.median_ape:.2f}%, "
          f"MAE {fit.mae_w:.2f} W on {fit.n_test} later samples")
    assert fit.n_train == 1541 and fit.n_test == 661
    assert fit.mape < 0.095 and fit.mae_w < 7.5


def test_platform_power_on_the_later_part(platform_fit):
    fit = platform_fit[0]
    print(f"platform: {fit.chosen.name}: MAPE {100 * fit.mape:.2f}%, MAE {fit.mae_w:.2f} W")
    assert fit.mape < 0.045 and fit.mae_w < 11.5


def test_the_choice_is_the_lowest_cross_validated_error(fits):
    for fit in fits[0].values():
        scores = fit.selection.scores
        assert [s.candidate for s in scores] == list(CANDIDATES)
        assert all(len(s.fold_mapes) == 5 and 0 < s.cv_mape < 0.5 for s in scores)
        assert fit.selection.chosen == min(scores, key=lambda s: s.cv_mape).candidate


def test_selection_is_handed_only_the_training_part(fits, nx12):
    fit_by_target, seen = fits
    assert [t for t, _ in seen] == ["package_power", "platform_power"]
    for target, train in seen:
        fit = fit_by_target[target]
        assert len(train) == fit.n_train == fit.selection.n_rows
        assert train["timestamp"].max() < fit.split_at_s
        pd.testing.assert_frame_equal(train, nx12.iloc[:fit.n_train])


def test_choice_and_model_ignore_the_later_part(fits, nx12):
    fit = fits[0]["package_power"]
    n = fit.n_train
    tampered = nx12.copy()
    tampered.loc[n:, "package_power"] *= 3
    rng = np.random.default_rng(0)
    later = tampered.loc[n:, list(COUNTER_COLUMNS)].to_numpy()
    tampered.loc[n:, list(COUNTER_COLUMNS)] = later[rng.permutation(len(later))]
    again = fit_chronological(tampered, "package_power", train_fraction=0.7)
    assert again.selection == fit.selection          # same candidates, same fold scores, same choice
    X = nx12[list(COUNTER_COLUMNS)].to_numpy(float)
    np.testing.assert_allclose(again.model.predict(X), fit.model.predict(X))
    assert again.mape > 0.5                          # the tampered labels were scored, not fitted


def test_counters_beat_a_constant(fits, nx12):
    for target, fit in fits[0].items():
        constant_mae_w = (nx12[target].iloc[fit.n_train:] - nx12[target].iloc[:fit.n_train].mean()).abs().mean()
        assert fit.mae_w < constant_mae_w / 3


def test_power_rises_with_sustained_load(fits):
    for target, fit in fits[0].items():
        idle_w, *loaded_w = [fit.model.predict(np.tile([c, 0.5 * c, 1e6], (40, 1)))[-1]
                             for c in (3e8, 1.5e10, 3e10, 4.5e10)]
        assert np.all(np.diff([idle_w, *loaded_w]) > 0), target
        if target == "package_power":
            assert 25 < idle_w < 40   # idle package power of nx12 is ~31 W


def test_the_earlier_model_reproduces_its_figure(nx12):
    old = fit_chronological(nx12, "package_power", train_fraction=0.7, candidates=(BASELINE,))
    assert old.chosen == BASELINE and old.mape == pytest.approx(0.048, abs=0.0005)
    assert np.all(old.model.named_steps["power"].coef_ >= 0)


def test_blocked_folds_are_contiguous_with_gaps():
    splits = blocked_folds(100, folds=5, gap=3)
    assert np.array_equal(np.concatenate([va for _, va in splits]), np.arange(100))
    for tr, va in splits:
        assert np.all(np.diff(va) == 1)
        assert not np.any((tr >= va[0] - 3) & (tr <= va[-1] + 3))


def test_steady_intervals():
    c = np.array([4e8, 3e8, 4e8, 2e10, 4e10, 4.1e10, 4.05e10, 4e10, 1e10, 3e8])
    assert steady_intervals(c).tolist() == [True, True, False, False, False, True, True, False, False, False]
