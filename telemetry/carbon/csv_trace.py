"""Carbon-intensity traces from CSV: the Electricity Maps data-portal export or any
two-column `timestamp,value` file, on a regular UTC grid with gaps forward-filled and counted."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from wattwise.telemetry.carbon.timeparse import parse_utc_s

PORTAL_TIME_COLUMN = "Datetime (UTC)"
PORTAL_COLUMNS = {
    "lca": "Carbon Intensity gCO₂eq/kWh (LCA)",
    "direct": "Carbon Intensity gCO₂eq/kWh (direct)",
}
# A two-column file's value header must name a carbon intensity in g/kWh: `renewables_pct` is not one.
_INTENSITY = re.compile(r"intensity|g(co2(e|eq)?)?(per|/)kwh|^(value|g)$")
_NOT_INTENSITY = re.compile(r"%|pct|percent|share|ratio|renewable|fossil|lowcarbon|lb|kg|mwh|moer")
_TOO_MANY_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_OPEN_QUOTE = re.compile(r"EOF inside string starting at row (\d+)")


@dataclass(frozen=True)
class TraceGapReport:
    """What `load_carbon_trace` had to repair. `gaps_filled` = `missing_rows` (grid timestamps
    absent from the file) + `missing_values` (rows present with an empty or non-numeric value);
    each was forward-filled from the previous hour (step). `filled_at` lists them."""

    path: str
    column: str
    step_s: float
    rows_read: int
    missing_rows: int
    missing_values: int
    duplicates_dropped: int
    leading_dropped: int
    filled_at: tuple[pd.Timestamp, ...]

    @property
    def gaps_filled(self) -> int:
        return self.missing_rows + self.missing_values


def load_carbon_trace(path: str | Path, column: str = "lca", *,
                      step_s: float | None = None) -> tuple[pd.Series, TraceGapReport]:
    """Read a trace: a float Series of g/kWh indexed by tz-aware UTC timestamps on a regular grid
    (step = the smallest spacing between rows unless `step_s` is given), plus the gap report.

    `column` is "lca" or "direct" for data-portal files (the `gCO₂eq` subscript is matched, and so
    is plain `gCO2eq`), or an exact column name. A two-column file is read as timestamp,value,
    with or without a header; timestamps are ISO 8601 (naive = UTC) or epoch seconds. A header's
    value column must name a carbon intensity (`g_per_kwh`, `carbon_intensity`, `gCO2eq/kWh`,
    `value`, ...), or be `column` exactly; anything else (`renewables_pct`) is refused.
    Rows are sorted; duplicate timestamps keep the first; leading rows without a value are dropped.
    Raises ValueError for a file it cannot read as a trace (the message says why)."""
    path = Path(path)
    times, values, column_name = _read_columns(path, column)
    frame = pd.DataFrame({"t": times, "v": pd.to_numeric(values, errors="coerce")})
    rows_read = len(frame)
    frame = frame.sort_values("t", kind="stable")
    duplicated = frame["t"].duplicated(keep="first")
    frame = frame[~duplicated]
    series = pd.Series(frame["v"].to_numpy(dtype=float), index=pd.DatetimeIndex(frame["t"]))
    first_valid = series.first_valid_index()
    if first_valid is None:
        raise ValueError(f"{path}: column {column_name!r} has no numeric value")
    leading = int((series.index < first_valid).sum())
    series = series[series.index >= first_valid]
    step = _step(series.index, step_s, path)
    grid = pd.date_range(series.index[0], series.index[-1], freq=step)
    off_grid = series.index.difference(grid)
    if len(off_grid):
        raise ValueError(f"{path}: {len(off_grid)} timestamps are off the {step} grid "
                         f"(first {off_grid[0]}); pass step_s or resample the file")
    missing_values = int(series.isna().sum())
    full = series.reindex(grid)
    holes = full.index[full.isna()]
    filled = full.ffill()
    filled.index.name = "time_utc"
    filled.name = "g_per_kwh"
    report = TraceGapReport(
        path=str(path), column=column_name, step_s=step.total_seconds(), rows_read=rows_read,
        missing_rows=len(holes) - missing_values, missing_values=missing_values,
        duplicates_dropped=int(duplicated.sum()), leading_dropped=leading,
        filled_at=tuple(holes))
    return filled, report


def csv_error_message(exc: Exception) -> str:
    """What pandas' tokenizer (or the decoder) could not read, in our words with the line number."""
    text = str(exc)
    if m := _TOO_MANY_FIELDS.search(text):
        expected, line, saw = m.groups()
        return f"line {line} has {saw} fields where the lines above have {expected} (quote a value that holds a comma)"
    if m := _OPEN_QUOTE.search(text):
        return f"line {int(m.group(1)) + 1} opens a quoted value that is never closed"
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text (byte {exc.start} of the file); save it as UTF-8 CSV"
    if isinstance(exc, pd.errors.EmptyDataError):
        return "empty file"
    return f"cannot read it as CSV: {text.strip().splitlines()[0] if text.strip() else type(exc).__name__}"


def _read_csv(path: Path, **kwargs) -> pd.DataFrame:
    try:
        return pd.read_csv(path, encoding="utf-8-sig", **kwargs)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise ValueError(f"{path}: {csv_error_message(e)}") from None


def names_intensity(header: str) -> bool:
    """Whether a column header names a carbon intensity in g/kWh."""
    text = re.sub(r"[^a-z0-9/%]", "", header.lower().replace("₂", "2"))
    return bool(_INTENSITY.search(text)) and not _NOT_INTENSITY.search(text)


def _read_columns(path: Path, column: str) -> tuple[pd.DatetimeIndex, pd.Series, str]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), None)
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: {csv_error_message(e)}") from None
    if not header:
        raise ValueError(f"{path}: empty file")
    if PORTAL_TIME_COLUMN in header:
        name = _portal_column(header, column, path)
        frame = _read_csv(path, usecols=[PORTAL_TIME_COLUMN, name], dtype={name: str})
        return _times(frame[PORTAL_TIME_COLUMN], path), frame[name], name
    if len(header) != 2:
        raise ValueError(f"{path}: neither an Electricity Maps export (no {PORTAL_TIME_COLUMN!r} "
                         f"column) nor a two-column timestamp,value file ({len(header)} columns)")
    has_header = not _is_timestamp(header[0])
    if has_header and header[1] != column and not names_intensity(header[1]):
        raise ValueError(f"{path}: column {header[1]!r} is not a carbon intensity in g/kWh (give a file whose "
                         "value column is one, named e.g. g_per_kwh, carbon_intensity or gCO2eq/kWh)")
    frame = _read_csv(path, header=0 if has_header else None, dtype=str)
    name = str(frame.columns[1]) if has_header else "value"
    return _times(frame.iloc[:, 0], path), frame.iloc[:, 1], name


def _portal_column(header: list[str], column: str, path: Path) -> str:
    wanted = PORTAL_COLUMNS.get(column.lower(), column)
    for name in header:
        if name == wanted or name.replace("₂", "2") == wanted.replace("₂", "2"):
            return name
    choices = ", ".join(repr(h) for h in header if "Carbon Intensity" in h)
    raise ValueError(f"{path}: no column {wanted!r}; use column='lca', 'direct' or one of {choices}")


def _is_timestamp(text: str) -> bool:
    try:
        parse_utc_s(float(text) if _is_number(text) else text)
    except ValueError:
        return False
    return True


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _times(raw: pd.Series, path: Path) -> pd.DatetimeIndex:
    try:
        if raw.map(_is_number).all():
            return pd.DatetimeIndex(pd.to_datetime(raw.astype(float), unit="s", utc=True))
        return pd.DatetimeIndex(pd.to_datetime(raw, utc=True, format="ISO8601"))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: unreadable timestamp: {exc}") from None


def _step(index: pd.DatetimeIndex, step_s: float | None, path: Path) -> pd.Timedelta:
    if step_s is not None:
        if step_s <= 0:
            raise ValueError(f"step_s must be > 0, got {step_s}")
        return pd.Timedelta(seconds=step_s)
    if len(index) < 2:
        raise ValueError(f"{path}: need at least two rows to infer the step; pass step_s")
    return pd.Series(index).diff().dropna().min()  # gaps only widen spacings
