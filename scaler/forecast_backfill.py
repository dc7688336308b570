"""Pre-warming from history: a workload's forecaster starts with its last day of demand, read
back from Prometheus, not empty.

The forecaster lives in memory, so without this a restarted scaler pre-warmed from the trend
and its misses alone for a day, and two replicas forecast differently until both had run one.
When the refresher first plans a workload (on start, each one the cluster's ScaledObjects name;
later, each one KEDA first registers), after that refresh's instant reads, its demand query is
read over the last `backfill_s` as a range query on the refresh step, ending a step before now:
every point is the value a refresh then read (or would have). Each point is judged and converted
as the refresher judges and converts an instant reading (its `judge` and `to_fps`): an absurd,
negative or NaN one is left out, counted and reported once; a step without data (no series
then: not there yet, or stale past Prometheus's lookback) is unknown, as it was to a refresh.
The core learns the rest as if it had stepped through it (`PlanCycle.seed_forecast`).

On the refresher's thread (answers never wait on it), within `budget_s` a refresh. A workload
whose read fails (Prometheus down, timed out, refused) or finds no time left learns from now,
as without backfill, and is not tried again (its forecaster has started learning by then): one
log line a refresh says which and why, and the plan view says what each workload was seeded with.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass
from functools import partial
from typing import Callable, Sequence

import numpy as np

from wattwise.scaler.demand import DemandHistory, DemandHistoryPort, DemandReading
from wattwise.scaler.metadata import ScalerRequest

log = logging.getLogger(__name__)

MAX_POINTS = 10_000        # one range query (Prometheus refuses more than 11,000 points a series)


@dataclass(frozen=True)
class Backfill:
    """What one workload's backfill read, for people (the plan view, the log)."""

    from_s: float
    to_s: float
    step_s: float
    seeded: int = 0           # points learned (known and plausible)
    missing: int = 0          # steps without data (no series then)
    skipped: int = 0          # points judged implausible, left out
    skipped_note: str = ""    # why, for the first of them
    error: str = ""           # the read failed: nothing seeded

    def as_dict(self) -> dict:
        return asdict(self)


def grid(now_s: float, interval_s: float, backfill_s: float) -> tuple[float, float, float] | None:
    """(start_s, end_s, step_s) of the range read: refresh times before `now_s` (a plan time)
    covering `backfill_s`, at most `MAX_POINTS` of them (a coarser step, a whole number of
    refreshes, for sub-second refreshes). None: nothing to read."""
    if backfill_s <= 0 or interval_s <= 0:
        return None
    step = interval_s * max(1, math.ceil(backfill_s / interval_s / MAX_POINTS))
    points = int(backfill_s // step)
    if points < 1:
        return None
    return now_s - points * step, now_s - step, step


def judged(history: DemandHistory, judge: Callable[[DemandReading], DemandReading],
           to_fps: Callable[[float], float]) -> tuple[np.ndarray, int, int, str]:
    """The history in FPS as the refresher would have read it point by point (NaN: unknown or left
    out), with how many points had no data, how many were judged implausible, and why."""
    fps = np.full(len(history.values), np.nan)
    missing = skipped = 0
    note = ""
    for k, (value, present) in enumerate(zip(history.values.tolist(), history.present.tolist())):
        if not present:
            missing += 1
            continue
        reading = judge(DemandReading(value, True))
        if reading.ok and reading.value is not None:
            fps[k] = to_fps(reading.value)
        else:
            skipped += 1
            note = note or reading.note
    return fps, missing, skipped, note


class ForecastBackfill:
    """Which workloads were backfilled, and how (`done`); `run` backfills the new ones."""

    def __init__(self, port: DemandHistoryPort, backfill_s: float, budget_s: float,
                 clock: Callable[[], float] = time.monotonic):
        self._port = port
        self.backfill_s = backfill_s
        self.budget_s = budget_s
        self._clock = clock
        self.done: dict[str, Backfill] = {}

    def run(self, requests: Sequence[ScalerRequest], now_s: float, interval_s: float,
            judge: Callable[[ScalerRequest, DemandReading], DemandReading],
            to_fps: Callable[[ScalerRequest, float], float],
            seed: Callable[[str, np.ndarray, np.ndarray], None], unreachable: str = "") -> None:
        """Backfill each request with a query not backfilled yet, seeding its history (`seed`).
        `unreachable`: this refresh found the demand source down (why): nothing more is asked."""
        live = {r.workload_key for r in requests}
        for key in set(self.done) - live:           # gone: its forecaster forgets it, and so do we
            del self.done[key]
        new = [r for r in requests if r.demand.query is not None and r.workload_key not in self.done]
        span = grid(now_s, interval_s, self.backfill_s)
        if not new or span is None:
            return
        start_s, end_s, step_s = span
        deadline = self._clock() + self.budget_s
        read: dict[str, DemandHistory] = {}
        failed: list[tuple[str, str]] = []
        seeded: list[Backfill] = []
        for r in new:
            query = r.demand.query
            assert query is not None
            if query not in read:
                if unreachable:
                    read[query] = _failed(f"not asked: {unreachable}")
                elif self._clock() > deadline:
                    read[query] = _failed(f"not asked: this refresh's {self.budget_s:g} s for backfill ran out")
                else:
                    read[query] = self._read(query, start_s, end_s, step_s)
                    if read[query].unreachable:
                        unreachable = read[query].note
            history = read[query]
            if not history.ok:
                self.done[r.workload_key] = Backfill(start_s, end_s, step_s, error=history.note)
                failed.append((r.workload_key, history.note))
                continue
            try:
                fps, missing, skipped, note = judged(history, partial(judge, r), partial(to_fps, r))
                seed(r.workload_key, history.times_s, fps)
            except Exception as e:  # noqa: BLE001 - a failed backfill never stops the plan; reported below
                error = f"{type(e).__name__}: {str(e)[:200]}"
                self.done[r.workload_key] = Backfill(start_s, end_s, step_s, error=error)
                failed.append((r.workload_key, error))
                continue
            done = Backfill(start_s, end_s, step_s, int(np.isfinite(fps).sum()), missing, skipped, note)
            self.done[r.workload_key] = done
            seeded.append(done)
        if seeded:
            skipped = sum(b.skipped for b in seeded)
            log.info("forecast backfill: %d workload(s) seeded with up to %.1f h of demand from the demand source "
                     "(%d points)%s", len(seeded), (end_s - start_s + step_s) / 3600.0, sum(b.seeded for b in seeded),
                     f"; {skipped} implausible point(s) left out ({next(b.skipped_note for b in seeded if b.skipped)})"
                     if skipped else "")
        if failed:
            log.warning("forecast backfill failed for %d workload(s), which learn from now: %s (%s)", len(failed),
                        ", ".join(key for key, _ in failed[:5]) + (", ..." if len(failed) > 5 else ""), failed[0][1])


    def _read(self, query: str, start_s: float, end_s: float, step_s: float) -> DemandHistory:
        try:
            return self._port.read_range(query, start_s, end_s, step_s)
        except Exception as e:  # noqa: BLE001 - the port says what it expects; anything else fails this read alone
            return _failed(f"range read failed: {type(e).__name__}: {str(e)[:200]}")


def _failed(note: str) -> DemandHistory:
    return DemandHistory(np.zeros(0), np.zeros(0), np.zeros(0, dtype=bool), False, note)
