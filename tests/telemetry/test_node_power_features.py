"""The node-power feature blocks on synthetic counters (`wattwise.telemetry.node_power_fit`)."""

import numpy as np
import pandas as pd

from wattwise.telemetry.node_power_fit import (CANDIDATES, COUNTER_COLUMNS, Candidate, feature_map,
                                               fit_chronological, select_model)


def bursts(n_bursts: int = 60, seed: int = 0) -> pd.DataFrame:
    """stress-ng-like runs: 4 idle samples, then 10 at a random load; 3 s apart."""
    rng = np.random.default_rng(seed)
    cycles = np.concatenate([np.r_[np.full(4, 4e8), np.full(10, rng.choice([2e10, 3e10, 4.5e10, 5.4e10]))]
                             for _ in range(n_bursts)])
    cycles = cycles * rng.normal(1.0, 0.01, len(cycles))
    return pd.DataFrame({"timestamp": 1.7e9 + 3.0 * np.arange(len(cycles)), "cpu_cycles": cycles,
                         "cpu_instructions": 0.6 * cycles, "cache_miss": np.full(len(cycles), 5e5)})


def test_next_reads_exactly_one_sample_ahead():
    X = bursts(5)[list(COUNTER_COLUMNS)].to_numpy(float)
    t = 20
    later = X.copy()
    later[t + 2:] *= 3
    np.testing.assert_array_equal(feature_map(later, ("next",))[:t + 1], feature_map(X, ("next",))[:t + 1])
    ahead = X.copy()
    ahead[t + 1, 0] += 1e10
    changed = np.flatnonzero(np.any(feature_map(ahead, ("next",)) != feature_map(X, ("next",)), axis=1))
    assert changed[0] == t and changed[-1] <= t + 1   # row t sees row t + 1; nothing earlier does
    np.testing.assert_array_equal(feature_map(X[:1], ("next",)), [[X[0, 0] / 1e9, 0.0]])   # the last row repeats


def test_next_recovers_a_meter_window_ahead_of_the_counters():
    """A meter averaging over the second half of this sample and the first of the next (P = 30 W
    + 1 W per 1e9 cycles of each) is what `next` models and `previous` cannot."""
    df = bursts()
    c = df["cpu_cycles"].to_numpy() / 1e9
    df["package_power"] = 30.0 + c + np.r_[c[1:], c[-1:]]
    ahead = Candidate("nnls counters + next", ("counters", "next"), "nnls")
    behind = Candidate("nnls counters + previous", ("counters", "previous"), "nnls")
    selection = select_model(df, "package_power", (behind, ahead))
    assert selection.chosen == ahead
    assert selection.scores[1].cv_mape < 0.005 < 0.03 < selection.scores[0].cv_mape
    fit = fit_chronological(df, "package_power", candidates=(behind, ahead))
    assert fit.mape < 0.005
    power = fit.model.named_steps["power"]
    np.testing.assert_allclose([power.intercept_, power.coef_[0], power.coef_[4]], [30.0, 1.0, 1.0], atol=0.05)


def test_selection_with_next_ignores_the_later_part():
    """The later part's counters reach only the predictions: the choice, fold scores and fitted model
    are those of the training part alone."""
    df = bursts()
    c = df["cpu_cycles"].to_numpy() / 1e9
    df["package_power"] = 30.0 + c + np.r_[c[1:], c[-1:]]
    candidates = tuple(cand for cand in CANDIDATES if "next" in cand.blocks)[:2]
    fit = fit_chronological(df, "package_power", candidates=candidates)
    tampered = df.copy()
    n = fit.n_train
    tampered.loc[n:, "package_power"] *= 3
    tampered.loc[n:, list(COUNTER_COLUMNS)] = tampered.loc[n:, list(COUNTER_COLUMNS)].to_numpy()[::-1]
    again = fit_chronological(tampered, "package_power", candidates=candidates)
    assert again.selection == fit.selection
    X = df[list(COUNTER_COLUMNS)].to_numpy(float)
    np.testing.assert_allclose(again.model.predict(X), fit.model.predict(X))
