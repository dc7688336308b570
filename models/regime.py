"""Has a pair's power-vs-FPS relation changed within the samples a refit reads?

A model upgrade, a new driver, a firmware setting: from some moment the same frames cost more or
less. A fit over a window holding both regimes is a compromise the quality gate refuses until the
old samples age out (a whole window); found here, the refit fits the samples since the change only.

A two-segment split test on the time-ordered samples (Chow's test, the split searched): for each
split between two sample times leaving at least `min_segment_samples` on either side, fit
power = c0 + c1 fps + c2 fps^2 before and after it by least squares on relative error (so a 300 W
pair and a 30 W one are judged alike), and take the split with the smallest combined error. It is a
change only when all three hold:

- `min_f`: the split explains far more than noise does. F = ((pooled - split) / 3) /
  (split / (n - 6)), the errors of one fit over all samples and of the two segment fits, is at
  least `min_f` (30). Searched over every split of 3,000 samples, independent 1% noise stays
  below 6, but noise held for seconds at a time, as real telemetry's is, reached 32 (its
  segments' fits then differed by 1.2% at most), so this alone is not enough:
- `min_shift`: the cost moved. Over the samples after the split whose FPS lies within the FPS seen
  before it, the after-fit's power differs from the before-fit's by at least `min_shift` (10%) in
  the median. That is the gate's hold-out error bound: a smaller change is learned by an ordinary
  refit, and at 5% a pod moved between nodes with a Kepler restart beside it was once named a
  change (the end-to-end test). FPS ramping up with the cost unchanged gives two fits that agree where both saw
  data; with no such overlap (at least `min_overlap_samples`) the test cannot tell a new cost from
  a new load, and says no change.
- the samples agree: the samples after the split sit off the fit before it, and the samples before
  it off the fit after it, in the median by at least half `min_shift` and in the direction of the
  shift. Two fits can differ by more than `min_shift` where one segment is short and bends freely
  while every sample sits on the other's fit: a pod moved onto the class, with its first 40
  samples split off, was named a +28% change this way (`tests/data/regime/`).

A change with fewer than `min_segment_samples` since cannot be split off on its own: it is found,
if at all, dated up to that many samples early (the e2e saw 2 s at five samples a second), and
dated right by the next refit. The test is repeated on the samples after a change (up to
`max_changes` times), so the change returned is the latest. Pure numpy, one pass of prefix sums:
every split costs a 3x3 solve (about 0.3 s for a day of 20 pods at a 15 s step).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

N_COEF = 3  # c0, c1, c2 per segment


@dataclass(frozen=True)
class RegimeSettings:
    min_segment_samples: int = 30
    min_f: float = 30.0
    min_shift: float = 0.10          # relative change of power at the same FPS (the gate's hold-out bound)
    min_overlap_samples: int = 10
    max_changes: int = 3


@dataclass(frozen=True)
class RegimeChange:
    """The relation changed at `at_s` (the first sample of the new regime); `power_shift` is the
    relative change of power at the same FPS (-0.3: 30% less), `n_before`/`n_since` the samples
    of the range either side."""

    at_s: float
    power_shift: float
    f_stat: float
    n_before: int
    n_since: int

    def describe(self) -> str:
        at = datetime.fromtimestamp(self.at_s, tz=timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
        return f"regime change at {at} (power {self.power_shift:+.0%} at the same FPS)"


def _solve(gram: np.ndarray, moment: np.ndarray, count: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients and residual sums of squares of stacked least-squares problems given by their
    normal equations (the target is all ones, so its sum of squares is the sample count)."""
    ridge = 1e-10 * np.trace(gram, axis1=-2, axis2=-1)[..., None, None] * np.eye(N_COEF) + 1e-300
    beta = np.linalg.solve(gram + ridge, moment[..., None])[..., 0]
    sse = count - np.einsum("...i,...i->...", moment, beta)
    return beta, np.maximum(sse, 0.0)


def _poly(beta: np.ndarray, x: np.ndarray) -> np.ndarray:
    return beta[0] + beta[1] * x + beta[2] * x * x


def _best_split(t_s: np.ndarray, fps: np.ndarray, power_w: np.ndarray, s: RegimeSettings) -> RegimeChange | None:
    n, m = power_w.size, max(int(s.min_segment_samples), N_COEF + 1)
    if n < 2 * m:
        return None
    x = fps / max(float(np.max(np.abs(fps))), 1e-9)          # FPS scaled to [0, 1]: a well-conditioned basis
    rows = np.stack([np.ones(n), x, x * x], axis=1) / power_w[:, None]   # relative error: (P - fit) / P
    gram = np.concatenate([np.zeros((1, N_COEF, N_COEF)), np.cumsum(rows[:, :, None] * rows[:, None, :], axis=0)])
    moment = np.concatenate([np.zeros((1, N_COEF)), np.cumsum(rows, axis=0)])
    k = np.flatnonzero(t_s[1:] > t_s[:-1]) + 1                # splits between two sample times only
    k = k[(k >= m) & (k <= n - m)]
    if k.size == 0:
        return None
    beta_b, sse_b = _solve(gram[k], moment[k], k.astype(float))
    beta_a, sse_a = _solve(gram[n] - gram[k], moment[n] - moment[k], (n - k).astype(float))
    _, sse_pooled = _solve(gram[n], moment[n], float(n))
    best = int(np.argmin(sse_b + sse_a))
    split_sse, at = float(sse_b[best] + sse_a[best]), int(k[best])
    f_stat = (float("inf") if split_sse <= 0 else
              (float(sse_pooled) - split_sse) / N_COEF / (split_sse / (n - 2 * N_COEF)))
    if not f_stat >= s.min_f:
        return None
    before, after = x[:at], x[at:]
    overlap = after[(after >= before.min()) & (after <= before.max())]
    if overlap.size < s.min_overlap_samples:
        return None
    was, now = _poly(beta_b[best], overlap), _poly(beta_a[best], overlap)
    ok = was > 0
    if not ok.any():
        return None
    shift = float(np.median(now[ok] / was[ok] - 1.0))
    if not abs(shift) >= s.min_shift:
        return None
    if not _samples_agree(x, power_w, at, beta_b[best], beta_a[best], shift, s):
        return None
    return RegimeChange(float(t_s[at]), shift, f_stat, at, n - at)


def _samples_agree(x: np.ndarray, power_w: np.ndarray, at: int, beta_b: np.ndarray, beta_a: np.ndarray,
                   shift: float, s: RegimeSettings) -> bool:
    """The samples, not only the two fits, say the cost moved by `shift`'s sign and at least half
    of `min_shift`, seen from both sides: the samples after the split against the fit before it,
    and the fit after it against the samples before it (each over the other's FPS range). A short
    segment's fit is free to bend where it has few points, so two fits can differ by more than
    `min_shift` while every sample sits on the other segment's fit."""
    def seen(xs: np.ndarray, ps: np.ndarray, beta: np.ndarray, other: np.ndarray, after: bool) -> float | None:
        inside = (xs >= other.min()) & (xs <= other.max())
        fit = _poly(beta, xs[inside])
        ok = fit > 0
        if int(ok.sum()) < s.min_overlap_samples:
            return None
        ratio = ps[inside][ok] / fit[ok] if after else fit[ok] / ps[inside][ok]
        return float(np.median(ratio - 1.0))

    before, after = x[:at], x[at:]
    from_after = seen(after, power_w[at:], beta_b, before, after=True)
    from_before = seen(before, power_w[:at], beta_a, after, after=False)
    bar = 0.5 * s.min_shift
    return all(v is not None and v * np.sign(shift) >= bar for v in (from_after, from_before))


def find_change(t_s, fps, power_w, settings: RegimeSettings = RegimeSettings()) -> RegimeChange | None:
    """The latest change of the power-vs-FPS relation in these samples (any order, one pair's, with
    positive power), or None when there is none to speak of (see the module notes)."""
    t_s, fps, power_w = (np.asarray(a, dtype=float) for a in (t_s, fps, power_w))
    keep = np.isfinite(t_s) & np.isfinite(fps) & np.isfinite(power_w) & (power_w > 0)
    order = np.argsort(t_s[keep], kind="stable")
    t_s, fps, power_w = t_s[keep][order], fps[keep][order], power_w[keep][order]
    found, offset = None, 0
    for _ in range(max(int(settings.max_changes), 1)):
        change = _best_split(t_s[offset:], fps[offset:], power_w[offset:], settings)
        if change is None:
            break
        offset += change.n_before
        found = RegimeChange(change.at_s, change.power_shift, change.f_stat, offset, change.n_since)
    return found


@dataclass(frozen=True)
class RecentDrift:
    """The newest `n_tail` samples (from `from_s`) sit `power_shift` off the fit of the ones before
    them, at the same FPS: perhaps a change too recent to split off (it needs `min_segment_samples`
    on its side), to be looked at again once that many have come in."""

    from_s: float
    power_shift: float
    n_tail: int

    def describe(self) -> str:
        return f"its newest {self.n_tail} samples sit {self.power_shift:+.0%} off the ones before"


def recent_drift(t_s, fps, power_w, settings: RegimeSettings = RegimeSettings()) -> RecentDrift | None:
    """Whether the newest samples of a pair (any order, positive power) sit, in the median, at least
    half of `min_shift` off a fit of the samples before the newest `min_segment_samples`, at the
    same FPS: what `find_change` cannot yet date (call it when that found none: the fit must be of
    one regime). Tails of every multiple of `min_overlap_samples` up to `min_segment_samples` are
    tried, and the one furthest off is returned (a tail reaching back past the change is diluted),
    so a change a few samples before the refit is seen too. A change that came fewer than `min_segment_samples`
    samples before a refit is otherwise seen by no one until the refit after, a whole period later.
    None when the tail agrees, or too few of its samples lie in the FPS range seen before."""
    t_s, fps, power_w = (np.asarray(a, dtype=float) for a in (t_s, fps, power_w))
    keep = np.isfinite(t_s) & np.isfinite(fps) & np.isfinite(power_w) & (power_w > 0)
    order = np.argsort(t_s[keep], kind="stable")
    t_s, fps, power_w = t_s[keep][order], fps[keep][order], power_w[keep][order]
    m = max(int(settings.min_segment_samples), N_COEF + 1)
    step = max(int(settings.min_overlap_samples), 1)
    n = power_w.size
    if n < 2 * m:
        return None
    x = fps / max(float(np.max(np.abs(fps))), 1e-9)
    rows = np.stack([np.ones(n - m), x[:n - m], x[:n - m] ** 2], axis=1) / power_w[:n - m, None]
    beta, _ = _solve(rows.T @ rows, rows.sum(axis=0), float(n - m))
    lo, hi = float(x[:n - m].min()), float(x[:n - m].max())
    found = None
    for k in range(step, m + 1, step):
        tail_x, tail_w = x[n - k:], power_w[n - k:]
        inside = (tail_x >= lo) & (tail_x <= hi)
        fit = _poly(beta, tail_x[inside])
        ok = fit > 0
        if int(ok.sum()) < settings.min_overlap_samples:
            continue
        shift = float(np.median(tail_w[inside][ok] / fit[ok] - 1.0))
        if abs(shift) >= 0.5 * settings.min_shift and (found is None or abs(shift) >= abs(found.power_shift)):
            found = RecentDrift(float(t_s[n - k]), shift, k)
    return found
