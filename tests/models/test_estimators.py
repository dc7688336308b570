import csv
from pathlib import Path

import numpy as np
import pytest
from sklearn.utils.estimator_checks import check_estimator

from wattwise.models.power_model import NodePowerModel
from wattwise.models.replica_model import ReplicaPowerModel

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("estimator", [NodePowerModel(), ReplicaPowerModel()], ids=lambda e: type(e).__name__)
def test_sklearn_estimator_checks_pass(estimator):
    failed = [r for r in check_estimator(estimator, on_fail=None) if r["status"] == "failed"]
    assert failed == [], [(r["check_name"], str(r["exception"])[:200]) for r in failed]


def _specpower_rows():
    with open(REPO / "telemetry" / "data" / "specpower_curves.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("row", _specpower_rows(), ids=lambda r: r["spec_hash"])
def test_node_power_model_reproduces_real_specpower_curves(row):
    util = np.linspace(0, 1, 11)
    power = np.array([float(row["active_idle_w"])] + [float(row[f"load_{p}_w"]) for p in range(10, 101, 10)])
    model = NodePowerModel(knot_range=(0.0, 1.0)).fit(util[:, None], power)
    assert np.allclose(model.predict(util[:, None]), power, atol=0.05)
    # between load points it interpolates linearly, as SPECpower's curve is read
    mid = (util[3] + util[4]) / 2
    assert model.predict([[mid]])[0] == pytest.approx((power[3] + power[4]) / 2, abs=0.05)
    curve = model.to_curve(sleep_w=5.0)
    assert curve.idle_w == pytest.approx(power[0], abs=0.05) and curve.max_w == pytest.approx(power[-1], abs=0.05)


def test_node_power_model_learns_a_nonlinear_curve_from_noisy_samples():
    rng = np.random.default_rng(3)
    u = rng.uniform(0, 1, 3000)
    truth = 80 + 40 * np.exp(2.2 * u)  # PEAKS-like K0 + K1 exp(K2 u)
    model = NodePowerModel(knot_range=(0.0, 1.0)).fit(u[:, None], truth + rng.normal(0, 3, u.size))
    grid = np.linspace(0, 1, 41)
    err = np.abs(model.predict(grid[:, None]) - (80 + 40 * np.exp(2.2 * grid))) / (80 + 40 * np.exp(2.2 * grid))
    assert err.max() < 0.02
    assert model.residual_std_w_ == pytest.approx(3, rel=0.15)


def test_replica_power_model_recovers_coefficients_and_uncertainty():
    rng = np.random.default_rng(7)
    fps = rng.uniform(1, 30, 2000)
    power = 12 + 1.8 * fps + 0.01 * fps**2 + rng.normal(0, 0.5, fps.size)
    m = ReplicaPowerModel().fit(fps[:, None], power)
    assert m.intercept_ == pytest.approx(12, abs=0.3)
    assert m.coef_[0] == pytest.approx(1.8, abs=0.05)
    mean, std = m.predict([[10.0]], return_std=True)
    assert mean[0] == pytest.approx(12 + 18 + 1, abs=0.2) and std[0] == pytest.approx(0.5, rel=0.1)
    assert m.power_w(10.0) == pytest.approx(mean[0])
