"""Each node class's power curve (`PowerCurve`: CPU utilisation 0..1 -> watts) from its nodes'
measured power against utilisation, plus a report. Pure: samples in, curves out.

The rule, per class (all its nodes' samples pooled; `NodeCurveSettings` holds the numbers):

1. Clean: a sample needs both power and utilisation (else `missing_util` / `missing_power`);
   power <= 0 is a node without RAPL, e.g. a VM (`zero_power`); above `max_power_w` (5 kW) a
   glitch (`absurd_power`, Kepler's kW-to-PW spikes); utilisation outside [-0.02, 1.02] is not a
   ratio (`bad_util`); what is left is clipped to [0, 1].
2. Enough data: at least `min_samples` (100) samples, whose utilisation spans at least
   `min_util_span` (0.30) from its 1st to its 99th percentile (the report's `util_min`/`util_max`),
   in at least 3 of the bins below. Otherwise the class is reported as not fitted, and the live
   loop keeps its SPECpower curve or prior.
3. Bins of 0.1 around 0, 0.1, ..., 1 (bin k holds utilisation within 0.05 of k/10); a bin with at
   least `min_bin_samples` (5) samples gives a knot at (median utilisation, median power). Power
   rising with utilisation, the median power is the power at the median utilisation, so a bin's
   samples need not sit at its centre; medians also shrug off the spikes step 1 did not catch.
4. Monotone: the knots' powers are made non-decreasing by isotonic regression weighted by each
   bin's samples (pool-adjacent-violators: a dip is averaged with its neighbours, not dropped).
5. The 11 points 0, 0.1, ..., 1 inside the measured range are the knots interpolated linearly.
   Outside it, no measurement says anything, and a flat line would understate the top of the
   curve while a straight one overshoots or undershoots with its slope. So the curve follows the
   median shape of the bundled SPECpower_ssj2008 curves (whole servers measured from active idle to
   100% load, normalised to 0..1: `specpower_shape`), scaled to the measured dynamic range (the
   weighted least-squares slope of knot power on that shape) and joined to the measured ends.
6. Plausible or not written: non-decreasing, idle > 0, max <= 5 kW (`curve_problems`, the check
   the refitter applies too).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression

from wattwise.models.power_curve import SPECPOWER_UTIL, PowerCurve

GRID = np.array(SPECPOWER_UTIL)
UTIL_SLACK = 0.02
MIN_KNOTS = 3          # populated bins a curve needs (a range of 0.3 has three or four)
MEASURED_EPS = 1e-9


@dataclass(frozen=True)
class NodeCurveSettings:
    min_samples: int = 100
    min_util_span: float = 0.30
    min_bin_samples: int = 5
    max_power_w: float = 5000.0


def curve_problems(curve: PowerCurve, max_power_w: float = 5000.0) -> list[str]:
    """Why a fitted curve must not be used (empty: plausible)."""
    problems = []
    steps = np.diff(np.asarray(curve.power_w, dtype=float))
    if (steps < -1e-9).any():
        at = float(curve.util[int(np.argmax(steps < -1e-9)) + 1])
        problems.append(f"power falls as utilisation rises (at {at:.0%})")
    if not curve.idle_w > 0:
        problems.append(f"idle power {curve.idle_w:.1f} W is not above 0")
    if curve.max_w > max_power_w:
        problems.append(f"maximum power {curve.max_w:.0f} W is above {max_power_w:.0f} W")
    return problems


def specpower_shape(curves: Iterable[PowerCurve]) -> np.ndarray:
    """The median of the curves' shapes on the 11 points, each normalised to 0 at idle and 1 at 100%."""
    shapes = []
    for c in curves:
        p = np.interp(GRID, c.util, c.power_w)
        if p[-1] > p[0]:
            shapes.append((p - p[0]) / (p[-1] - p[0]))
    if not shapes:
        return GRID.copy()
    return np.maximum.accumulate(np.median(shapes, axis=0))


@cache
def bundled_shape() -> tuple[float, ...]:
    from wattwise.telemetry.grid_zones import bundled_measured_curves

    return tuple(float(v) for v in specpower_shape(m.curve for m in bundled_measured_curves()))


@dataclass(frozen=True)
class NodeCurveFit:
    curves: dict[str, PowerCurve]               # the fitted classes only
    classes: list[dict] = field(default_factory=list)   # one report entry per class seen
    shape: tuple[float, ...] = ()

    def report(self) -> dict:
        return {"classes": self.classes, "extrapolation_shape": [round(v, 4) for v in self.shape],
                "units": {"power": "W", "util": "fraction of the node's CPU time (0..1)"}}


def _clean(df: pd.DataFrame, max_power_w: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The usable samples, and per sample the reason it was dropped ('' if kept)."""
    power = df["power_w"].to_numpy(dtype=float)
    util = df["util"].to_numpy(dtype=float)
    reason = np.full(len(df), "", dtype=object)

    def rule(mask, name):
        reason[(reason == "") & mask] = name

    with np.errstate(invalid="ignore"):
        rule(np.isnan(util) & np.isfinite(power), "missing_util")
        rule(np.isnan(power) & np.isfinite(util), "missing_power")
        rule(~np.isfinite(power) | ~np.isfinite(util), "missing_both")
        rule(power <= 0, "zero_power")
        rule(power > max_power_w, "absurd_power")
        rule((util < -UTIL_SLACK) | (util > 1 + UTIL_SLACK), "bad_util")
    keep = reason == ""
    out = df.loc[keep, ["node_class", "node", "power_w", "util"]].copy()
    out["util"] = out["util"].clip(0.0, 1.0)
    return out, pd.DataFrame({"node_class": df["node_class"].to_numpy()[~keep], "reason": reason[~keep]})


def knots(util: np.ndarray, power_w: np.ndarray, min_bin_samples: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(median utilisation, median power, samples) of each populated 0.1 bin, in utilisation order."""
    bins = np.clip(np.rint(util * 10).astype(int), 0, 10)
    u, p, n = [], [], []
    for k in range(11):
        inside = bins == k
        if inside.sum() >= min_bin_samples:
            u.append(float(np.median(util[inside])))
            p.append(float(np.median(power_w[inside])))
            n.append(int(inside.sum()))
    return np.array(u), np.array(p), np.array(n)


def curve_from_knots(u: np.ndarray, p: np.ndarray, n: np.ndarray, shape: np.ndarray) -> PowerCurve:
    """Steps 4 and 5 of the module notes: monotone knots, interpolated inside, shape outside."""
    if len(u) >= 2:
        p = IsotonicRegression(increasing=True).fit_transform(u, p, sample_weight=n)
    s_knots = np.interp(u, GRID, shape)
    if len(u) >= 2 and np.ptp(s_knots) > 0:
        w = n / n.sum()
        s_mean, p_mean = float(w @ s_knots), float(w @ p)
        dynamic_w = max(0.0, float(w @ ((s_knots - s_mean) * (p - p_mean))) / float(w @ (s_knots - s_mean) ** 2))
    else:
        dynamic_w = 0.0
    inside = np.interp(GRID, u, p)
    below = p[0] - dynamic_w * (s_knots[0] - shape)
    above = p[-1] + dynamic_w * (shape - s_knots[-1])
    power = np.where(GRID < u[0], below, np.where(GRID > u[-1], above, inside))
    return PowerCurve(tuple(float(x) for x in GRID), tuple(round(float(x), 3) for x in power))


def fit_node_curves(samples: pd.DataFrame, class_of: Mapping[str, str] | None = None,
                    settings: NodeCurveSettings = NodeCurveSettings(), expected_classes: Iterable[str] = (),
                    shape: Iterable[float] | None = None) -> NodeCurveFit:
    """Fit every class of the nodes in `samples` (node, t_s, power_w, util). A node's class is
    `class_of[node]`, else the node's own name (as the pair fit names it). `expected_classes` are
    reported even with no sample."""
    shape_arr = np.asarray(tuple(shape) if shape is not None else bundled_shape(), dtype=float)
    class_of = class_of or {}
    df = samples.copy()
    df["node_class"] = [class_of.get(n, n) for n in df["node"]]
    clean, dropped = _clean(df, settings.max_power_w)
    excluded: dict[str, dict[str, int]] = {}
    for (c, r), k in dropped.groupby(["node_class", "reason"]).size().items():
        excluded.setdefault(str(c), {})[str(r)] = int(k)
    nodes: dict[str, set[str]] = {}
    for n in df["node"]:
        nodes.setdefault(class_of.get(n, n), set()).add(str(n))
    for n, c in class_of.items():
        nodes.setdefault(c, set()).add(n)
    curves, entries = {}, []
    groups = {str(c): g for c, g in clean.groupby("node_class")}
    for c in sorted(set(nodes) | set(excluded) | set(expected_classes)):
        g = groups.get(c)
        util = g["util"].to_numpy(dtype=float) if g is not None else np.zeros(0)
        power = g["power_w"].to_numpy(dtype=float) if g is not None else np.zeros(0)
        entry = {"node_class": c, "nodes": sorted(nodes.get(c, ())), "samples_used": int(len(util)),
                 "samples_excluded": dict(sorted(excluded.get(c, {}).items())), "util_min": None, "util_max": None,
                 "points_measured": [], "idle_w": None, "max_w": None, "power_w": None, "fitted": False, "note": ""}
        curve, note = _fit_class(util, power, settings, shape_arr, entry)
        if curve is not None:
            curves[c] = curve
            entry.update(idle_w=curve.idle_w, max_w=curve.max_w, power_w=list(curve.power_w),
                         fitted=True)
        entry["note"] = note
        entries.append(entry)
    return NodeCurveFit(curves, entries, tuple(float(v) for v in shape_arr))


def _fit_class(util: np.ndarray, power: np.ndarray, settings: NodeCurveSettings, shape: np.ndarray,
               entry: dict) -> tuple[PowerCurve | None, str]:
    if len(util) < settings.min_samples:
        excluded = entry["samples_excluded"]
        why = "; excluded: " + ", ".join(f"{k} {v}" for k, v in excluded.items()) if excluded else ""
        return None, f"not fitted: {len(util)} usable samples (< {settings.min_samples}){why}"
    lo, hi = (float(q) for q in np.quantile(util, [0.01, 0.99]))
    entry.update(util_min=round(lo, 4), util_max=round(hi, 4))
    if hi - lo < settings.min_util_span:
        return None, f"not fitted: utilisation spans only {hi - lo:.2f} (< {settings.min_util_span:.2f})"
    u, p, n = knots(util, power, settings.min_bin_samples)
    if len(u) < MIN_KNOTS:
        return None, (f"not fitted: only {len(u)} utilisation bin(s) of 0.1 with {settings.min_bin_samples}+ "
                      f"samples (< {MIN_KNOTS})")
    curve = curve_from_knots(u, p, n, shape)
    entry["points_measured"] = [float(x) for x in GRID if u[0] - MEASURED_EPS <= x <= u[-1] + MEASURED_EPS]
    problems = curve_problems(curve, settings.max_power_w)
    if problems:
        return None, "not fitted: implausible curve: " + "; ".join(problems)
    outside = [side for side, far in (("below", u[0] > MEASURED_EPS), ("above", u[-1] < 1 - MEASURED_EPS)) if far]
    note = (f"measured {u[0]:.0%}-{u[-1]:.0%}" +
            (f"; {' and '.join(outside)} from the SPECpower shape" if outside else ""))
    return curve, note


def _num(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def format_node_table(entries: list[dict]) -> str:
    """The classes' curves as a fixed-width table for people."""
    header = ("node_class", "nodes", "used", "excl", "util min-max", "idle W", "max W", "curve")
    rows = [header]
    for e in entries:
        rows.append((e["node_class"], str(len(e["nodes"])), str(e["samples_used"]),
                     str(sum(e["samples_excluded"].values())),
                     "-" if e["util_min"] is None else f"{e['util_min']:.2f}-{e['util_max']:.2f}",
                     _num(e["idle_w"], ".1f"), _num(e["max_w"], ".1f"),
                     ("fitted: " if e["fitted"] else "") + e["note"]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
