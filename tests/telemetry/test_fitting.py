import numpy as np
import pandas as pd
import pytest

from wattwise.models.energy import WorkloadClassModel
from wattwise.models.replica_model import ReplicaPowerModel
from wattwise.telemetry.fitting import FitSettings, fit_energy_models


def pair_samples(workload, node_class, c0, c1, c2, cap, n=400, seed=0, pods=2):
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(pods):
        offered = rng.uniform(0.1 * cap, 1.2 * cap, n)
        fps = np.minimum(offered, cap)
        power = (c0 + c1 * fps + c2 * fps**2) * (1 + rng.normal(0, 0.01, n))
        rows.append(pd.DataFrame({"t_s": 15.0 * np.arange(n), "workload": workload, "pod": f"{workload}-{k}",
                                  "node": f"{node_class}-n{k}", "node_class": node_class, "power_w": power,
                                  "fps": fps, "drop_fps": offered - fps}))
    return pd.concat(rows, ignore_index=True)


def prior(workload, node_class):
    return WorkloadClassModel(workload, node_class, ReplicaPowerModel.from_coefficients(10, 2), capacity_fps=7.0)


def test_recovers_truth_and_capacity():
    df = pd.concat([pair_samples("ns/a", "x", 12, 1.6, 0.01, 32), pair_samples("ns/b", "y", 5, 0.4, 0.0, 90, seed=1)])
    result = fit_energy_models(df, prior_for=prior)
    by = {(m.workload, m.node_class): m for m in result.models}
    grid = np.linspace(4, 32, 20)
    truth = 12 + 1.6 * grid + 0.01 * grid**2
    fitted = np.array([by[("ns/a", "x")].power.power_w(f) for f in grid])
    assert np.max(np.abs(fitted - truth) / truth) < 0.02
    assert abs(by[("ns/a", "x")].capacity_fps - 32) < 0.5 and not by[("ns/a", "x")].prior
    entry = next(p for p in result.pairs if p["workload"] == "ns/a")
    assert entry["holdout_mape"] < 0.02 and entry["prior"] is False and entry["nodes"] == ["x-n0", "x-n1"]
    assert list(entry)[:5] == ["workload", "node_class", "nodes", "samples_used", "samples_excluded"]


def test_a_pair_never_seen_saturated_keeps_its_prior_capacity():
    """The reviewer's case: 400 samples at 40-80% of the prior's 7 fps, no drops. The 95th percentile
    of what was delivered is only a lower bound; the prior's capacity stands."""
    rng = np.random.default_rng(4)
    fps = rng.uniform(0.4 * 7.0, 0.8 * 7.0, 400)
    df = pd.DataFrame({"t_s": 15.0 * np.arange(400), "workload": "ns/a", "pod": "ns/a-0", "node": "x-n0",
                       "node_class": "x", "power_w": (12 + 1.6 * fps) * (1 + rng.normal(0, 0.01, 400)),
                       "fps": fps, "drop_fps": 0.0})
    result = fit_energy_models(df, prior_for=prior)
    (m,) = result.models
    assert not m.prior and m.capacity_fps == 7.0
    assert "kept the prior's capacity" in result.pairs[0]["note"]
    assert not result.candidates[("ns/a", "x")].saturated


def test_holdout_is_the_last_fifth_of_the_time_range():
    df = pair_samples("ns/a", "x", 12, 1.6, 0.0, 32, n=101)
    result = fit_energy_models(df)
    assert result.holdout_from_s == 0.8 * 1500


def test_pair_with_too_little_data_keeps_its_prior_and_says_so():
    df = pd.concat([pair_samples("ns/a", "x", 12, 1.6, 0.0, 32), pair_samples("ns/few", "x", 12, 1.6, 0.0, 32, n=10)])
    result = fit_energy_models(df, prior_for=prior, settings=FitSettings(min_train_samples=30))
    entry = next(p for p in result.pairs if p["workload"] == "ns/few")
    assert entry["prior"] is True and "kept prior" in entry["note"]
    assert entry["power_w_at_fps_min"] == round(10 + 2 * entry["fps_min"], 4)
    model = next(m for m in result.models if m.workload == "ns/few")
    assert model.prior and model.capacity_fps == 7.0


def test_flat_fps_cannot_give_a_slope():
    df = pair_samples("ns/a", "x", 12, 1.6, 0.0, 32)
    df["fps"] = 20.0 + 0.1 * np.sin(np.arange(len(df)))  # moving (not stale) but within 0.2 frames/s
    entry = fit_energy_models(df).pairs[0]
    assert entry["prior"] is True and "FPS spans" in entry["note"]


def test_spikes_are_excluded_before_fitting():
    df = pair_samples("ns/a", "x", 12, 1.6, 0.0, 32)
    df.loc[::50, "power_w"] = 5e6
    result = fit_energy_models(df)
    entry = result.pairs[0]
    assert entry["samples_excluded"] == {"absurd_power": 16}
    assert abs(result.models[0].power.power_w(20) - 44) < 1.0


def test_upstream_exclusions_are_merged_and_expected_pairs_reported():
    df = pair_samples("ns/a", "x", 12, 1.6, 0.0, 32)
    result = fit_energy_models(df, exclusions={("ns/a", "x"): {"gap": 3}}, expected_pairs=[("ns/z", "x")])
    assert result.pairs[0]["samples_excluded"] == {"gap": 3}
    assert [p["workload"] for p in result.pairs] == ["ns/a", "ns/z"]
    assert result.pairs[1]["note"].startswith("no model")


def test_each_fitted_pair_is_a_candidate_for_the_gate():
    df = pd.concat([pair_samples("ns/a", "x", 12, 1.6, 0.0, 32), pair_samples("ns/few", "x", 12, 1.6, 0.0, 32, n=10)])
    result = fit_energy_models(df, prior_for=prior)
    assert set(result.candidates) == {("ns/a", "x")}
    c = result.candidates[("ns/a", "x")]
    entry = next(p for p in result.pairs if p["workload"] == "ns/a")
    assert c.model is next(m for m in result.models if m.workload == "ns/a")
    assert len(c.evidence) == entry["samples_used"] and c.evidence.n_holdout == 2 * 80  # t >= 0.8 * 5985
    held = c.evidence.holdout
    pred = c.holdout_power.predict(c.evidence.fps[held, None])
    assert np.mean(np.abs(pred - c.evidence.power_w[held]) / c.evidence.power_w[held]) == \
        pytest.approx(entry["holdout_mape"], abs=1e-6)


def upgraded_at(step, n=400, factor=0.7, seed=0, pods=2):
    """ns/a on x: 12 + 1.6 fps + 0.01 fps^2 W per replica, times `factor` from sample `step` on."""
    df = pair_samples("ns/a", "x", 12, 1.6, 0.01, 32, n=n, seed=seed, pods=pods)
    df.loc[df["t_s"] >= 15.0 * step, "power_w"] *= factor
    return df


def test_a_pair_whose_cost_changed_is_fitted_on_the_samples_since_only():
    result = fit_energy_models(upgraded_at(250))
    change = result.changes[("ns/a", "x")]
    assert change.at_s == 15.0 * 250 and change.power_shift == pytest.approx(-0.3, abs=0.02)
    entry = result.pairs[0]
    assert entry["regime_change_s"] == 15.0 * 250 and entry["samples_before_change"] == 2 * 250
    assert entry["samples_used"] == 2 * 150 and entry["holdout_from_s"] == pytest.approx(15.0 * (250 + 0.8 * 149))
    model = result.models[0]
    for fps in (5.0, 20.0, 30.0):
        assert model.power.power_w(fps) == pytest.approx(0.7 * (12 + 1.6 * fps + 0.01 * fps**2), rel=0.02)
    c = result.candidates[("ns/a", "x")]
    assert len(c.evidence) == 2 * 150 and c.evidence.n_holdout == 2 * 30


def test_without_change_detection_the_whole_range_is_fitted():
    result = fit_energy_models(upgraded_at(250), settings=FitSettings(regime=None))
    assert result.changes == {} and result.pairs[0]["regime_change_s"] is None
    assert result.pairs[0]["samples_used"] == 800


def test_an_unchanged_pair_reports_no_change():
    result = fit_energy_models(pair_samples("ns/a", "x", 12, 1.6, 0.01, 32))
    assert result.changes == {} and result.pairs[0]["regime_change_s"] is None
    assert result.pairs[0]["samples_before_change"] == 0 and result.pairs[0]["samples_used"] == 800
