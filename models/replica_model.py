"""`ReplicaPowerModel`: the power (W) one replica of a workload draws on a node class, against
the FPS it delivers; with the residual spread as its uncertainty.

Form: P = c0 + sum_j (c1_j x_j + c2_j x_j^2), fitted by least squares. With the one feature
FPS, c0 is the replica's standing draw (its confidential VM, memory, polling), c1 the energy per
frame in joules and c2 the convexity as a class saturates. `predict(X, return_std=True)` also
returns the standard deviation of the residuals.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data


class ReplicaPowerModel(RegressorMixin, BaseEstimator):
    def __init__(self, degree: int = 2, alpha: float = 1e-6):
        self.degree = degree
        self.alpha = alpha

    def _design(self, X: np.ndarray) -> np.ndarray:
        cols = [np.ones((X.shape[0], 1))]
        for d in range(1, self.degree + 1):
            cols.append(X**d)
        return np.hstack(cols)

    def fit(self, X, y, sample_weight=None):
        X, y = validate_data(self, X, y, y_numeric=True)
        if self.degree not in (1, 2):
            raise ValueError(f"degree must be 1 or 2, got {self.degree}")
        A = self._design(X)
        w = _check_sample_weight(sample_weight, X, ensure_non_negative=True)
        if not w.sum() > 0:
            raise ValueError("sample_weight sums to zero: nothing to fit")
        sw = np.sqrt(w)[:, None]
        # Scale columns so the ridge term treats FPS and FPS^2 alike.
        scale = np.maximum(np.abs(A[w > 0]).max(axis=0), 1e-12)
        As = A / scale
        reg = np.sqrt(self.alpha) * np.eye(A.shape[1])
        reg[0, 0] = 0.0
        coef_s, *_ = np.linalg.lstsq(np.vstack([As * sw, reg]),
                                     np.concatenate([y * sw[:, 0], np.zeros(A.shape[1])]), rcond=None)
        coef = coef_s / scale
        self.intercept_ = float(coef[0])
        self.coef_ = coef[1:]
        resid = y - A @ coef
        self.residual_std_w_ = float(np.sqrt(np.sum(w * resid**2) / np.sum(w)))
        return self

    def predict(self, X, return_std: bool = False):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        out = self.intercept_ + self._design(X)[:, 1:] @ self.coef_
        if return_std:
            return out, np.full(out.shape, self.residual_std_w_)
        return out

    @classmethod
    def from_coefficients(cls, intercept_w: float, w_per_fps: float, w_per_fps2: float = 0.0,
                          residual_std_w: float = 0.0) -> "ReplicaPowerModel":
        """A one-feature model with known coefficients (priors, files)."""
        m = cls(degree=2)
        m.intercept_ = float(intercept_w)
        m.coef_ = np.array([float(w_per_fps), float(w_per_fps2)])
        m.residual_std_w_ = float(residual_std_w)
        m.n_features_in_ = 1
        return m

    def power_w(self, fps: float) -> float:
        """Scalar convenience for one-feature models: power at `fps` frames per second."""
        return float(self.intercept_ + self.coef_[0] * fps + (self.coef_[1] * fps * fps if len(self.coef_) > 1 else 0.0))
