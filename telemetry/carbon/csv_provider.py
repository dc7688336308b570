"""Carbon intensity replayed from recorded traces (one per zone), step-held between points."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from wattwise.models.ports import CarbonReading
from wattwise.telemetry.carbon.csv_trace import TraceGapReport, load_carbon_trace
from wattwise.telemetry.carbon.errors import CarbonProviderError
from wattwise.telemetry.carbon.provider import check_signal
from wattwise.telemetry.carbon.timeparse import format_utc


class _Trace:
    def __init__(self, series: pd.Series, step_s: float):
        self.times_s = series.index.as_unit("ns").asi8 / 1e9
        self.g_per_kwh = series.to_numpy(dtype=float)
        self.step_s = step_s


class CsvTraceProvider:
    """At `now_s` serves the value of the last trace point at or before it (the hourly value
    holds for its hour). `now_s` before the trace or at/after its end plus one step raises a
    non-retryable error. With `forecast_horizon_s`, the trace points after `now_s` up to the
    horizon are returned as a (perfect) forecast. `gaps_filled` counts repaired points."""

    name = "csv-trace"

    def __init__(self, traces: Mapping[str, pd.Series], *, step_s_by_zone: Mapping[str, float] | None = None,
                 signal: str = "average", forecast_horizon_s: float = 0.0,
                 gap_reports: Mapping[str, TraceGapReport] | None = None):
        if not traces:
            raise ValueError("CsvTraceProvider needs at least one zone trace")
        self.signal = check_signal(signal)
        self.forecast_horizon_s = forecast_horizon_s
        self.gap_reports = dict(gap_reports or {})
        self._traces = {}
        for zone, series in traces.items():
            step_s = (step_s_by_zone or {}).get(zone)
            if step_s is None:
                step_s = float(pd.Series(series.index).diff().min().total_seconds()) \
                    if len(series) > 1 else 3600.0
            self._traces[zone] = _Trace(series, step_s)

    @classmethod
    def from_files(cls, paths_by_zone: Mapping[str, str | Path], *, column: str = "lca",
                   signal: str = "average", forecast_horizon_s: float = 0.0) -> CsvTraceProvider:
        traces, reports = {}, {}
        for zone, path in paths_by_zone.items():
            traces[zone], reports[zone] = load_carbon_trace(path, column)
        return cls(traces, step_s_by_zone={z: r.step_s for z, r in reports.items()}, signal=signal,
                   forecast_horizon_s=forecast_horizon_s, gap_reports=reports)

    @property
    def zones(self) -> tuple[str, ...]:
        return tuple(self._traces)

    @property
    def gaps_filled(self) -> int:
        return sum(report.gaps_filled for report in self.gap_reports.values())

    def __repr__(self) -> str:
        return f"CsvTraceProvider(zones={list(self._traces)}, gaps_filled={self.gaps_filled})"

    def fetch(self, zone: str, now_s: float) -> CarbonReading:
        trace = self._traces.get(zone)
        if trace is None:
            raise CarbonProviderError(self.name, f"no trace for zone {zone!r}", retryable=False,
                                      hint=f"traces exist for {sorted(self._traces)}")
        start_s, end_s = trace.times_s[0], trace.times_s[-1] + trace.step_s
        if not start_s <= now_s < end_s:
            raise CarbonProviderError(
                self.name, f"time {format_utc(now_s)} is outside the {zone} trace "
                           f"[{format_utc(start_s)}, {format_utc(end_s)})",
                retryable=False, hint="use a trace that covers the simulated period")
        i = int(np.searchsorted(trace.times_s, now_s, side="right")) - 1
        forecast: tuple[tuple[float, float], ...] = ()
        if self.forecast_horizon_s > 0:
            j = int(np.searchsorted(trace.times_s, now_s + self.forecast_horizon_s, side="right"))
            forecast = tuple((float(t), float(g)) for t, g in
                             zip(trace.times_s[i + 1:j], trace.g_per_kwh[i + 1:j]))
        return CarbonReading(zone=zone, g_per_kwh=float(trace.g_per_kwh[i]), at_s=float(trace.times_s[i]),
                             source=self.name, signal=self.signal, forecast=forecast)
