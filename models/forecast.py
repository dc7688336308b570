"""Predictive pre-warming: the demand expected when a replica started now would be ready.

Confidential replicas take seconds (CPU TEEs) to minutes (GPU TEEs: VM boot, attestation, model
decryption) to start, so a plan sized for the demand of now is late on every ramp. Each door's
plan cycle (the scaler's refresher, the simulator) keeps one `DemandForecaster`, feeds it every
refresh's demand, and hands the planner the demand expected a lead ahead (`Demand.expected_fps`):
the refresh interval (the next chance to re-plan) plus the start-up on the slowest node class the
workload may run on, a node's start there included (`startup_lead_s`). The planner plans for the
higher of that and the window's peak, and says how much the forecast added. The re-plan gate is
given the same expectation, so a ramp the forecast sees re-plans before it arrives.

The forecast, per workload, is today's demand plus the largest of:
- the seasonal step: how much demand rose, on the days seen, between this time of day and the
  time the lead reaches (a daily profile of `bin_s` bins, each an exponential average over days
  of the bin's median, so a minority of absurd samples never enters it), at most how far apart
  the bins seen over the last day lie (a burst filling most of a bin enters the profile, where it
  would fade by half a day: it is replayed for a day, not for weeks);
- the recent trend: the least-squares slope over the last `trend_window_s`, times the lead;
- zero: the forecast never plans below the demand of now (scale-down stays the window's job);
plus the `quantile` of its own misses due over the last `misses_window_s` (demand at the due
time, interpolated between the refreshes around it, above what was expected, margin left out), so
a forecaster that keeps under-shooting learns a margin, the same one at any refresh interval.
Scored against its margined forecasts, the misses would shrink by the margin they taught and the
margin would swing between the quantile and zero.
Missing (NaN) demand is neither learned from nor forecast for.

A forecaster lives in memory, so a restarted door would learn its profile again over a day: `seed`
gives a workload the demand history a door read back (the live scaler: a Prometheus range query on
start, `scaler/forecast_backfill.py`), learned as `add` would have learned it.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from wattwise.models.cluster import NodeClass
from wattwise.models.workload import Workload

DAY_S = 86400.0


@dataclass(frozen=True)
class ForecastSettings:
    enabled: bool = True
    bin_s: float = 900.0           # daily profile resolution
    ema_alpha: float = 0.5         # weight of the newest day in each bin
    trend_window_s: float = 600.0  # the recent trend's least-squares window
    quantile: float = 0.9          # of the recent misses, added as a margin
    misses_window_s: float = 3600.0  # misses due this recently teach the margin
    misses_min_s: float = 600.0      # ... once they span this long


@dataclass(frozen=True)
class ForecastHistory:
    """How much one workload's forecaster has learned, for people (the plan view)."""

    profile_bins: int                  # bins of the daily profile learned
    bins: int                          # of this many (a day)
    bin_s: float
    seeded_samples: int = 0            # known demand samples it was seeded with (0: all learned live)
    seeded_from_s: float | None = None
    seeded_to_s: float | None = None


def startup_lead_s(workload: Workload, classes: Iterable[NodeClass], interval_s: float) -> float:
    """The forecast's lead: a plan made now stands until the next refresh, `interval_s` away, and
    a replica it starts then is ready a start-up later on the slowest of `classes` (those the
    workload may run on, `planner.usable_classes`; TEE start-up when confidential), counting the
    node's start (`wake_s`): a pre-warmed replica with no room on an awake node waits Pending
    until the node autoscaler has started one, which it does only for Pending pods. Counted always,
    not only when a node of the class sleeps: whether the plan needs a new node is known only once
    it is made, and nodes cluster-autoscaler removed are gone from the inventory, not asleep."""
    starts = [c.wake_s + (c.startup_tee_s if workload.confidentiality.required else c.startup_s) for c in classes]
    return interval_s + max(starts, default=0.0)


class DemandForecaster:
    """Per workload (in `keys` order): `add` every refresh's demand, then `expected` the demand
    at now + each workload's lead (NaN where now's is unknown). Mutable, owned by one door."""

    def __init__(self, keys: list[str], lead_s, settings: ForecastSettings = ForecastSettings()):
        self.keys = list(keys)
        self.lead_s = np.asarray(lead_s, dtype=float).reshape(len(self.keys))
        self.settings = settings
        bins = max(1, int(round(DAY_S / settings.bin_s)))
        self._bins = bins
        self._daily = np.full((len(self.keys), bins), np.nan)     # learned profile
        self._seen = np.full((len(self.keys), bins), np.nan)      # each bin's median when last seen
        self._acc: list[list[float]] = [[] for _ in self.keys]     # the bin under way: its samples
        self._acc_bin: int | None = None
        self._recent: deque[tuple[float, np.ndarray]] = deque()
        self._due: list[deque[tuple[float, float]]] = [deque() for _ in self.keys]   # (due_s, expected)
        self._misses: list[deque[tuple[float, float]]] = [deque() for _ in self.keys]   # (due_s, miss)
        self._prev: tuple[float, np.ndarray] | None = None        # the last refresh's (now_s, fps)
        self._margin_cache: np.ndarray | None = None
        self._last: tuple[float, bytes, np.ndarray] | None = None
        self._seeded: list[tuple[int, float, float] | None] = [None for _ in self.keys]   # (samples, from_s, to_s)

    def _bin(self, t_s: float) -> int:
        return int((t_s % DAY_S) // self.settings.bin_s) % self._bins

    def add(self, now_s: float, fps) -> None:
        """Learn from this refresh's demand (NaN: unknown), and remember what is expected from
        here, to score it when its lead has passed. A time not after the last one added (a second
        wake within the same quantised second) is not learned again."""
        if self._last is not None and now_s <= self._last[0]:
            return
        fps = np.asarray(fps, dtype=float)
        b = self._bin(now_s)
        if self._acc_bin is not None and b != self._acc_bin:
            self._close_bin()
        self._acc_bin = b
        ok = np.isfinite(fps)
        for samples, value, known in zip(self._acc, fps.tolist(), ok.tolist()):
            if known:
                samples.append(value)
        self._recent.append((now_s, fps))
        while self._recent and self._recent[0][0] < now_s - self.settings.trend_window_s:
            self._recent.popleft()
        for i, (due, misses) in enumerate(zip(self._due, self._misses)):
            while due and due[0][0] <= now_s:
                due_s, was = due.popleft()
                actual = self._demand_at(due_s, i, now_s, float(fps[i]))
                if math.isfinite(actual):
                    misses.append((due_s, actual - was))
            while misses and misses[0][0] < now_s - self.settings.misses_window_s:
                misses.popleft()
        self._prev = (now_s, fps)
        expected = self.expected(now_s, fps)
        unmargined = expected - self._margins()      # misses are scored without the margin they teach
        for i, value in enumerate(unmargined):
            if math.isfinite(value):
                self._due[i].append((now_s + float(self.lead_s[i]), float(value)))
        self._last = (now_s, fps.tobytes(), expected)

    def _close_bin(self) -> None:
        assert self._acc_bin is not None
        self._margin_cache = None          # the margins follow the misses once per bin
        median = np.array([float(np.median(v)) if v else np.nan for v in self._acc])
        seen = np.isfinite(median)
        old = self._daily[:, self._acc_bin]
        a = self.settings.ema_alpha
        self._daily[:, self._acc_bin] = np.where(seen, np.where(np.isfinite(old), a * median + (1 - a) * old, median),
                                                 old)
        self._seen[:, self._acc_bin] = np.where(seen, median, self._seen[:, self._acc_bin])
        self._acc = [[] for _ in self.keys]

    def _demand_at(self, t_s: float, i: int, now_s: float, fps_now: float) -> float:
        """Workload i's demand at `t_s`, between the last refresh and now: interpolated, so a
        forecast is scored at its due time whatever the refresh interval. NaN (unknown, not
        scored) across a gap in the reads longer than the lead (a refresh is never that far
        apart): a guess there would teach a margin of its own."""
        if t_s >= now_s:
            return fps_now
        if self._prev is None or now_s - self._prev[0] > self.lead_s[i]:
            return math.nan
        t0, fps0 = self._prev[0], float(self._prev[1][i])
        return fps0 + (fps_now - fps0) * (t_s - t0) / (now_s - t0)

    def _day_range(self) -> np.ndarray:
        """Per workload, how far apart the bins seen over the last day lie (0 until two are)."""
        seen = np.isfinite(self._seen)
        hi = np.max(np.where(seen, self._seen, -np.inf), axis=1)
        lo = np.min(np.where(seen, self._seen, np.inf), axis=1)
        return np.where(seen.sum(axis=1) >= 2, hi - lo, 0.0)

    def _trend_fps_per_s(self) -> np.ndarray:
        """Least-squares slope per workload over the recent samples (NaNs left out), vectorised."""
        if len(self._recent) < 3:
            return np.zeros(len(self.keys))
        t = np.array([s for s, _ in self._recent])[:, None]      # [T, 1]
        y = np.vstack([v for _, v in self._recent])               # [T, W]
        ok = np.isfinite(y)
        n = ok.sum(axis=0)
        t_mean = np.where(n > 0, (t * ok).sum(axis=0) / np.maximum(n, 1), 0.0)
        y0 = np.where(ok, y, 0.0)
        y_mean = y0.sum(axis=0) / np.maximum(n, 1)
        dt = np.where(ok, t - t_mean, 0.0)
        var = (dt * dt).sum(axis=0)
        slope = np.where((n >= 3) & (var > 0), (dt * (y0 - y_mean)).sum(axis=0) / np.where(var > 0, var, 1.0), 0.0)
        return slope

    def _margins(self) -> np.ndarray:
        """The quantile of each workload's misses due over the last `misses_window_s` (0 until they
        span `misses_min_s`): by age, not count, so any refresh interval learns over the same hour.
        Recomputed once per profile bin (the misses of one bin barely move it; a per-refresh
        quantile cost more than the plan)."""
        if self._margin_cache is None:
            s = self.settings
            self._margin_cache = np.array([
                max(0.0, float(np.quantile([v for _, v in m], s.quantile)))
                if m and m[-1][0] - m[0][0] >= s.misses_min_s else 0.0 for m in self._misses])
        return self._margin_cache

    def expected(self, now_s: float, fps_now) -> np.ndarray:
        """Demand expected at now + lead per workload (>= now's); NaN where now's is unknown."""
        fps_now = np.asarray(fps_now, dtype=float)
        if not self.settings.enabled:
            return np.full(len(self.keys), np.nan)
        if self._last is not None and self._last[0] == now_s and self._last[1] == fps_now.tobytes():
            return self._last[2].copy()        # asked again for what `add` just worked out
        rows = np.arange(len(self.keys))
        later_bins = (((now_s + self.lead_s) % DAY_S) // self.settings.bin_s).astype(int) % self._bins
        later = self._daily[rows, later_bins]
        here = self._daily[:, self._bin(now_s)]
        seasonal = np.where(np.isfinite(later) & np.isfinite(here), later - here, 0.0)
        seasonal = np.minimum(seasonal, self._day_range())
        trend = self._trend_fps_per_s() * self.lead_s
        rise = np.maximum(0.0, np.maximum(seasonal, trend))
        return np.where(np.isfinite(fps_now), fps_now + rise + self._margins(), np.nan)

    def rekeyed(self, keys: list[str], lead_s) -> "DemandForecaster":
        """The forecaster for another set of workloads (the live loop's come and go): each kept
        workload keeps what was learned, a new one starts empty; leads as given now."""
        keys = list(keys)
        lead = np.asarray(lead_s, dtype=float).reshape(len(keys))
        if keys == self.keys:
            self.lead_s = lead
            return self
        out = DemandForecaster(keys, lead, self.settings)
        old = {k: i for i, k in enumerate(self.keys)}
        for j, k in enumerate(keys):
            i = old.get(k)
            if i is None:
                continue
            out._daily[j] = self._daily[i]
            out._seen[j] = self._seen[i]
            out._acc[j] = self._acc[i]
            out._due[j] = self._due[i]
            out._misses[j] = self._misses[i]
            out._seeded[j] = self._seeded[i]
        out._acc_bin = self._acc_bin
        out._margin_cache = None
        out._last = None
        nan = np.full(len(keys), np.nan)
        out._recent = deque((t, np.array([v[old[k]] if k in old else np.nan for k in keys]) if len(v) else nan)
                            for t, v in self._recent)
        return out


    # -- history read back (a restarted door) -----------------------------------------------------

    def seed(self, key: str, times_s, fps) -> int:
        """Learn workload `key`'s past demand (`fps` at `times_s`, NaN: unknown) as `add` would
        have, had it been added at each of those times in time order, for a workload with nothing
        learned yet (a new forecaster, or one just rekeyed in), before the next `add`. A repeated
        time keeps its first sample, and times not before the last `add` are left out, as `add`
        leaves them out. Returns the known samples learned.

        All but the last `_replay_s` fold straight into the daily profile (all `add` keeps of them);
        the rest are added, for the trend, the forecasts due and the misses. Same state as adding
        every sample (to rounding), but where the others' margins are to be worked out again (a
        forecaster just rekeyed, or new): the workload's then is too, from all its misses, not
        from those at the bin's start, as `add`'s cache would keep it until the bin ends."""
        i = self.keys.index(key)
        t = np.asarray(times_s, dtype=float).reshape(-1)
        v = np.asarray(fps, dtype=float).reshape(-1)
        order = np.argsort(t, kind="stable")
        t, v = t[order], v[order]
        keep = np.r_[True, np.diff(t) > 0] if len(t) else np.zeros(0, dtype=bool)
        if self._last is not None:
            keep &= t < self._last[0]
        t, v = t[keep], v[keep]
        known = int(np.isfinite(v).sum())
        if not len(t):
            return 0
        solo = DemandForecaster([key], [self.lead_s[i]], self.settings)
        cut = int(np.searchsorted(t, t[-1] - self._replay_s(i), side="left"))
        solo._fold(t[:cut], v[:cut])
        for when, value in zip(t[cut:].tolist(), v[cut:].tolist()):
            solo.add(when, [value])
        self._graft(i, solo)
        self._seeded[i] = (known, float(t[0]), float(t[-1]))
        return known

    def histories(self) -> dict[str, ForecastHistory]:
        """Per workload, how much it has learned and what it was seeded with (for people)."""
        bins = np.isfinite(self._daily).sum(axis=1).tolist()
        return {key: ForecastHistory(n, self._bins, self.settings.bin_s, *(seeded or (0, None, None)))
                for key, n, seeded in zip(self.keys, bins, self._seeded)}

    def _replay_s(self, i: int) -> float:
        """How far back `seed` adds rather than folds: the misses of the last window (and the one a
        bin earlier, which the margin was last worked out from), each scored a lead after a
        forecast that read the trend window before it."""
        s = self.settings
        return s.misses_window_s + 2 * s.bin_s + float(self.lead_s[i]) + s.trend_window_s

    def _fold(self, times_s: np.ndarray, fps: np.ndarray) -> None:
        """The profile of this one-workload forecaster with nothing learned, as `add` leaves it
        after these samples (in time order): each run of samples in one bin is closed into the
        profile when the next run starts; the last stays open, as the bin under way."""
        bins = [self._bin(t) for t in times_s.tolist()]
        values = fps.tolist()
        start = 0
        for k in range(1, len(bins) + 1):
            if k < len(bins) and bins[k] == bins[start]:
                continue
            if self._acc_bin is not None:
                self._close_bin()
            self._acc_bin = bins[start]
            self._acc[0] = [x for x in values[start:k] if math.isfinite(x)]
            start = k

    def _graft(self, i: int, solo: "DemandForecaster") -> None:
        """Workload i's state from a one-workload forecaster that learned its history."""
        if solo._acc_bin is not None and self._acc_bin is not None and solo._acc_bin != self._acc_bin:
            solo._close_bin()          # the history's last bin ended before the one under way here
        elif self._acc_bin is None:
            self._acc_bin = solo._acc_bin
        self._daily[i], self._seen[i] = solo._daily[0], solo._seen[0]
        self._acc[i] = solo._acc[0]
        self._due[i], self._misses[i] = solo._due[0], solo._misses[0]
        n = len(self.keys)
        merged = {t: v.copy() for t, v in self._recent}
        for t, v in solo._recent:
            merged.setdefault(t, np.full(n, np.nan))[i] = v[0]
        self._recent = deque(sorted(merged.items(), key=lambda item: item[0]))
        assert solo._prev is not None
        if self._prev is None or self._prev[0] == solo._prev[0]:     # the reads a forecast due is scored between
            prev = np.full(n, np.nan) if self._prev is None else self._prev[1].copy()
            prev[i] = solo._prev[1][0]
            self._prev = (solo._prev[0], prev)
        if self._margin_cache is not None and solo._margin_cache is not None:    # as worked out at the bin's start
            self._margin_cache = np.r_[self._margin_cache[:i], solo._margin_cache, self._margin_cache[i + 1:]]
        else:
            self._margin_cache = None
        if self._last is not None:       # still the last time added, but its cached answer no longer holds
            self._last = (self._last[0], b"", self._last[2])
