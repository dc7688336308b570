"""`NodePowerModel`: node power (W) against utilisation, idle plus a non-linear dynamic part.

An additive piecewise-linear regressor: each feature gets `n_knots` evenly spaced knots over its
training range and a hat-function basis, fitted by ridge-regularised least squares. With one
feature (utilisation) and knots at 0, 0.1, ..., 1 it reproduces a SPECpower_ssj2008 curve
exactly and can be turned into the `PowerCurve` the planner uses.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from wattwise.models.power_curve import PowerCurve


def hat_basis(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """Linear-interpolation basis: column k is the weight of knot k at each x (x clipped)."""
    x = np.clip(x, knots[0], knots[-1])
    idx = np.clip(np.searchsorted(knots, x, side="right") - 1, 0, len(knots) - 2)
    left, right = knots[idx], knots[idx + 1]
    t = np.where(right > left, (x - left) / np.where(right > left, right - left, 1.0), 0.0)
    basis = np.zeros((x.shape[0], len(knots)))
    rows = np.arange(x.shape[0])
    basis[rows, idx] += 1.0 - t
    basis[rows, idx + 1] += t
    return basis


class NodePowerModel(RegressorMixin, BaseEstimator):
    """Parameters: `n_knots` per feature; `alpha` ridge penalty on differences between
    neighbouring knot values (smoothness); `knot_range` fixes the knot span (e.g. (0, 1) for
    utilisation) instead of taking it from the data."""

    def __init__(self, n_knots: int = 11, alpha: float = 1e-6, knot_range: tuple[float, float] | None = None):
        self.n_knots = n_knots
        self.alpha = alpha
        self.knot_range = knot_range

    def _design(self, X: np.ndarray) -> np.ndarray:
        blocks = [hat_basis(X[:, j], self.knots_[j]) for j in range(X.shape[1])]
        # Drop the first column of every block after the first: blocks share one intercept.
        return np.hstack([blocks[0]] + [b[:, 1:] for b in blocks[1:]])

    def fit(self, X, y, sample_weight=None):
        X, y = validate_data(self, X, y, y_numeric=True)
        if self.n_knots < 2:
            raise ValueError(f"n_knots must be at least 2, got {self.n_knots}")
        w = _check_sample_weight(sample_weight, X, ensure_non_negative=True)
        if not w.sum() > 0:
            raise ValueError("sample_weight sums to zero: nothing to fit")
        used = X[w > 0]
        knots = []
        for j in range(X.shape[1]):
            lo, hi = self.knot_range if self.knot_range is not None else (used[:, j].min(), used[:, j].max())
            if hi <= lo:
                hi = lo + 1.0
            knots.append(np.linspace(lo, hi, self.n_knots))
        self.knots_ = knots
        A = self._design(X)
        sw = np.sqrt(w)[:, None]
        # Smoothness penalty: differences of neighbouring knot values within each block.
        n_cols = A.shape[1]
        D = np.diff(np.eye(n_cols), axis=0) * np.sqrt(self.alpha)
        lhs = np.vstack([A * sw, D])
        rhs = np.concatenate([y * sw[:, 0], np.zeros(D.shape[0])])
        self.coef_, *_ = np.linalg.lstsq(lhs, rhs, rcond=None)
        resid = y - A @ self.coef_
        self.residual_std_w_ = float(np.sqrt(np.average(resid**2, weights=w))) if len(y) else 0.0
        return self

    def predict(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        return self._design(X) @ self.coef_

    def to_curve(self, sleep_w: float = 0.0) -> PowerCurve:
        """The fitted curve of a one-feature (utilisation in [0, 1]) model, for the planner."""
        check_is_fitted(self)
        grid = np.linspace(0.0, 1.0, 11)
        return PowerCurve(tuple(grid), tuple(float(max(0.0, p)) for p in self.predict(grid[:, None])), sleep_w)
