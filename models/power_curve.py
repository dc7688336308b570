"""A node's power against CPU utilisation: idle plus a non-linear dynamic part.

Represented as points interpolated linearly, which reproduces SPECpower_ssj2008's 11-point
curves (active idle, 10% ... 100% load) exactly. `NodePowerModel` in `power_model.py` is the
scikit-learn estimator that learns one from measurements.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wattwise.models.errors import InvalidInputError

SPECPOWER_UTIL = tuple(i / 10 for i in range(11))


@dataclass(frozen=True)
class PowerCurve:
    util: tuple[float, ...]
    power_w: tuple[float, ...]
    sleep_w: float = 0.0  # drawn while the node is suspended / powered down to standby

    def __post_init__(self):
        if len(self.util) != len(self.power_w) or len(self.util) < 2:
            raise InvalidInputError("power", "a power curve needs matching util and power_w lists of 2+ points")
        if any(b <= a for a, b in zip(self.util, self.util[1:])):
            raise InvalidInputError("power.util", "utilisation points must increase strictly")
        if self.util[0] != 0.0 or self.util[-1] != 1.0:
            raise InvalidInputError("power.util", "utilisation points must run from 0.0 to 1.0")
        if any(not (0 <= p < 100_000) for p in self.power_w):
            raise InvalidInputError("power.power_w", "power must be between 0 and 100 kW")

    @property
    def idle_w(self) -> float:
        return self.power_w[0]

    @property
    def max_w(self) -> float:
        return self.power_w[-1]

    def at(self, util) -> np.ndarray | float:
        """Power in watts at utilisation in [0, 1] (clipped)."""
        out = np.interp(np.clip(util, 0.0, 1.0), self.util, self.power_w)
        return float(out) if np.ndim(out) == 0 else out

    def dynamic_w(self, util) -> np.ndarray | float:
        return self.at(util) - self.idle_w

    @classmethod
    def linear(cls, idle_w: float, max_w: float, sleep_w: float = 0.0) -> "PowerCurve":
        return cls((0.0, 1.0), (float(idle_w), float(max_w)), sleep_w)

    @classmethod
    def specpower(cls, active_idle_w: float, load_w: list[float], sleep_w: float = 0.0) -> "PowerCurve":
        """From SPECpower columns: active idle, then average watts at 10%, 20%, ..., 100% load."""
        if len(load_w) != 10:
            raise InvalidInputError("power.specpower", "expected 10 load points (10% ... 100%)")
        return cls(SPECPOWER_UTIL, (float(active_idle_w), *map(float, load_w)), sleep_w)

    def scaled_to(self, idle_w: float, max_w: float) -> "PowerCurve":
        """The same curve shape stretched to a different idle and peak (e.g. a GPU board)."""
        lo, hi = self.idle_w, self.max_w
        span = (hi - lo) or 1.0
        pts = tuple(idle_w + (p - lo) / span * (max_w - idle_w) for p in self.power_w)
        return PowerCurve(self.util, pts, self.sleep_w)
