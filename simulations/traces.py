"""Demand and carbon traces from CSV, replayed on the simulation clock.

Demand: first column a timestamp (ISO 8601; Unix seconds only under a header naming the time,
e.g. `timestamp`, so a file without a time column is refused rather than read as 1970), then
either a numeric column proportional to load on a regular grid (requests or streams per
interval), or one row per event, counted per `rate_window_s`. The rate is placed at the centre
of each interval and linearly interpolated to the simulation step, then normalised so its peak
over the replayed window is 1.

Carbon: read by `telemetry.carbon.csv_trace.load_carbon_trace` (the reader the live CSV provider
uses): the Electricity Maps data-portal export (LCA column) or a two-column (timestamp, g/kWh)
file. Values hold for their interval (an hourly average stays constant for the hour). Gaps on the
trace's grid (missing rows or empty values) are forward-filled and counted, never hidden.

Traces from different years line up by offset: sample k of the simulation reads the trace at
`trace_start + k * step_s`.
"""

from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from wattwise.models.errors import InvalidInputError
from wattwise.telemetry.carbon import csv_trace

log = logging.getLogger(__name__)

DEFAULT_RATE_WINDOW_S = 3600.0
MAX_G_PER_KWH = 5000.0


@dataclass(frozen=True)
class CarbonTrace:
    path: str
    times: pd.DatetimeIndex      # regular UTC grid
    g_per_kwh: np.ndarray
    report: csv_trace.TraceGapReport

    @property
    def step_s(self) -> float:
        return self.report.step_s

    @property
    def gaps_filled(self) -> int:
        """Grid points with no value in the file (missing rows or empty values), forward-filled."""
        return self.report.gaps_filled

    def sample(self, start: pd.Timestamp, offsets_s: np.ndarray, what: str) -> np.ndarray:
        """Values at `start + offsets_s` (held for each interval). Raises when outside the trace."""
        rel = (start - self.times[0]).total_seconds() + offsets_s
        idx = np.floor(rel / self.step_s).astype(np.int64)
        if idx.min() < 0 or idx.max() >= len(self.g_per_kwh):
            covered = f"{self.times[0]} .. {self.times[-1] + pd.Timedelta(seconds=self.step_s)}"
            raise InvalidInputError(what, f"the replayed window is outside the trace {self.path} ({covered})",
                                    "choose --start / --days inside it")
        return self.g_per_kwh[idx]


def load_carbon_trace(path: str | Path) -> CarbonTrace:
    """The LCA column of a data-portal export, or the value column of a two-column file."""
    try:
        series, report = csv_trace.load_carbon_trace(path, "lca")
    except FileNotFoundError:
        raise InvalidInputError(str(path), "no such file") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise InvalidInputError(str(path), f"cannot read it as CSV: {str(e).splitlines()[0]}") from None
    except ValueError as e:
        raise InvalidInputError(str(path), str(e).removeprefix(f"{path}: ")) from None
    values = series.to_numpy(dtype=float)
    if values.min() < 0 or values.max() > MAX_G_PER_KWH:
        raise InvalidInputError(str(path), "carbon intensity outside 0..5000 g/kWh: is this the right column?")
    if report.gaps_filled:
        log.warning("%s: %d gap(s) on the %.0f s grid forward-filled", path, report.gaps_filled, report.step_s)
    return CarbonTrace(str(path), pd.DatetimeIndex(series.index).as_unit("ns"), values, report)


@dataclass(frozen=True)
class DemandTrace:
    path: str
    mode: str                    # "events" or "values"
    centres: pd.DatetimeIndex    # interval centres
    rate: np.ndarray             # events or value per interval
    interval_s: float
    rows: int

    @property
    def start(self) -> pd.Timestamp:
        return self.centres[0] - pd.Timedelta(seconds=self.interval_s / 2)

    @property
    def end(self) -> pd.Timestamp:
        return self.centres[-1] + pd.Timedelta(seconds=self.interval_s / 2)

    def sample(self, start: pd.Timestamp, offsets_s: np.ndarray) -> tuple[np.ndarray, int]:
        """Rate at `start + offsets_s`, linearly interpolated; reads outside the trace wrap around
        (periodic extension). Returns (rate, samples that wrapped)."""
        span_s = (self.end - self.start).total_seconds()
        rel = (start - self.start).total_seconds() + offsets_s
        wrapped = int(np.count_nonzero((rel < 0) | (rel >= span_s)))
        rel = np.mod(rel, span_s)
        centres = (self.centres - self.start).total_seconds().to_numpy()
        xp = np.concatenate([[centres[0] - self.interval_s], centres, [centres[-1] + self.interval_s]])
        fp = np.concatenate([[self.rate[-1]], self.rate, [self.rate[0]]])
        return np.interp(rel, xp, fp), wrapped


# A header naming the time: only then are plain numbers read as Unix seconds.
_TIME_HEADER = re.compile(r"time|date|epoch|unix|gmt|created|(^|_)(ts|at)$", re.IGNORECASE)


def _parse_times(raw: pd.Series, header: str, path: Path) -> pd.DatetimeIndex:
    text = raw.astype(str).str.strip()
    numeric = pd.to_numeric(text, errors="coerce").notna().all()
    if numeric and not _TIME_HEADER.search(header):
        raise InvalidInputError(str(path), f"no timestamp column: the first column, {header!r}, holds plain numbers",
                                "put the time first: ISO 8601, naive = UTC, or Unix seconds under a header "
                                "such as timestamp")
    try:
        if numeric:
            return pd.DatetimeIndex(pd.to_datetime(pd.to_numeric(text), unit="s", utc=True)).as_unit("ns")
        return pd.DatetimeIndex(pd.to_datetime(text, utc=True, format="ISO8601")).as_unit("ns")
    except (ValueError, TypeError):
        raise InvalidInputError(str(path), f"the first column, {header!r}, holds a value that is not a timestamp",
                                "use ISO 8601 (naive = UTC) or Unix seconds") from None


def _read_csv(path: Path) -> pd.DataFrame:
    """The file as text; a file whose first line is already data (no header) gets one."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            first = next(csv.reader(handle), [])
    except FileNotFoundError:
        raise InvalidInputError(str(path), "no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        problem = csv_trace.csv_error_message(e) if isinstance(e, UnicodeDecodeError) else e.strerror
        raise InvalidInputError(str(path), problem) from None
    headerless = bool(first) and _is_time_text(first[0])
    try:
        frame = pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False,
                            header=None if headerless else 0)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise InvalidInputError(str(path), csv_trace.csv_error_message(e)) from None
    if headerless:
        frame.columns = ["time", *(f"value{i}" for i in range(1, frame.shape[1]))]
    if frame.shape[0] < 2:
        raise InvalidInputError(str(path), "needs a header and at least two rows")
    return frame


def _is_time_text(cell: str) -> bool:
    """An ISO 8601 date or time (a header cell never is one)."""
    if not re.match(r"\d{4}-\d{2}-\d{2}", cell.strip()):
        return False
    try:
        pd.Timestamp(cell.strip())
    except (ValueError, TypeError):
        return False
    return True


def load_demand_trace(path: str | Path, rate_window_s: float = DEFAULT_RATE_WINDOW_S) -> DemandTrace:
    path = Path(path)
    frame = _read_csv(path)
    t = _parse_times(frame.iloc[:, 0], str(frame.columns[0]), path)
    values = None
    if frame.shape[1] >= 2:
        values = pd.to_numeric(frame.iloc[:, 1].str.strip(), errors="coerce")
    order = np.argsort(t.asi8, kind="stable")
    t = t[order]
    diffs = np.diff(t.asi8) / 1e9
    regular = len(diffs) > 0 and diffs.min() > 0 and np.mean(np.isclose(diffs, np.median(diffs))) >= 0.9
    if values is not None and regular and values.notna().mean() >= 0.9:
        v = values.to_numpy(dtype=float)[order]
        interval = float(np.median(diffs))
        series = pd.Series(v, index=t)
        grid = pd.date_range(t[0], t[-1], freq=pd.Timedelta(seconds=interval))
        series = series[~series.index.duplicated()].reindex(grid).interpolate(limit_direction="both")
        if (series < 0).any():
            raise InvalidInputError(str(path), "demand values must not be negative")
        centres = grid + pd.Timedelta(seconds=interval / 2)
        return DemandTrace(str(path), "values", centres, series.to_numpy(dtype=float), interval, len(frame))
    start = t[0].floor(pd.Timedelta(seconds=rate_window_s))
    bins = np.floor((t.asi8 - start.as_unit("ns").value) / 1e9 / rate_window_s).astype(np.int64)
    counts = np.bincount(bins).astype(float)
    centres = pd.date_range(start, periods=len(counts), freq=pd.Timedelta(seconds=rate_window_s)) + \
        pd.Timedelta(seconds=rate_window_s / 2)
    return DemandTrace(str(path), "events", centres, counts, rate_window_s, len(frame))


def streams_from_rate(rate: np.ndarray, peak_streams: float, floor_streams: float) -> np.ndarray:
    """Scale a rate so its peak becomes `peak_streams` (floor added below), rounded to whole streams."""
    peak = float(rate.max()) if rate.size else 0.0
    norm = rate / peak if peak > 0 else np.zeros_like(rate)
    return np.rint(floor_streams + (peak_streams - floor_streams) * norm)
