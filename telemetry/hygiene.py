"""Data hygiene for power/FPS samples: stated rules, every exclusion or clamp counted by reason,
and counter resets counted as events (`count_reset_events`).

Known faults, as users report them on sustainable-computing-io/kepler: absurd spikes (9 kW on
two 35 W PCs, #1344; petajoules for a pod, #897), unit slips (mJ read as J and back: 160,000 W of
platform power, "as if there is a divide / 1000 error", #1774), zeros inside VMs without RAPL
(#352), exporters stuck on one value. Nothing here is silent: `clean_samples` returns the kept
rows and, per (workload, node class), a count per reason.

Rules, in order:
- `non_finite`: power or FPS is NaN or infinite -> excluded.
- `negative`: power or FPS below zero -> excluded.
- `unit_slip_rescaled`: a sample 1000x away from its pair's median power that lands back within
  `unit_slip_band` of the median once rescaled by 1000 -> clamped (rescaled), kept.
- `absurd_power`: pod power above `max_pod_power_w` -> excluded.
- `pod_above_node`: pod power above its node's power (x `node_margin`) when the node's is known
  -> excluded (a pod cannot draw more than the node it runs on).
- `zero_power`: power exactly zero while frames are delivered -> excluded (no RAPL inside a VM,
  or a pod Kepler has not attributed yet).
- `spike`: above `spike_ratio` x the pair median and above median + `spike_mads` MADs -> excluded.
- `stale`: the FPS of a pod repeats exactly for longer than `stale_after_s` (a stuck exporter)
  -> the repeats after the first are excluded.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd

PairCounts = dict[tuple[str, str], dict[str, int]]


@dataclass(frozen=True)
class HygieneRules:
    max_pod_power_w: float = 2000.0
    node_margin: float = 1.10
    unit_slip_band: float = 3.0
    spike_ratio: float = 3.0
    spike_mads: float = 10.0
    stale_after_s: float = 900.0


def add_counts(into: PairCounts, keys: pd.DataFrame, mask: np.ndarray, reason: str) -> None:
    """Add, per (workload, node_class) of the rows where `mask` holds, their count under `reason`."""
    if not mask.any():
        return
    sub = keys.loc[mask, ["workload", "node_class"]]
    for (w, c), n in sub.groupby(["workload", "node_class"], observed=True, sort=False).size().items():
        if n:
            bucket = into.setdefault((str(w), str(c)), {})
            bucket[reason] = bucket.get(reason, 0) + int(n)


def merge_counts(*parts: PairCounts) -> PairCounts:
    out: PairCounts = {}
    for part in parts:
        for pair, counts in part.items():
            c = Counter(out.get(pair, {}))
            c.update(counts)
            out[pair] = dict(c)
    return out


def _group_codes(df: pd.DataFrame) -> np.ndarray:
    """An integer per (workload, node_class); straight from the category codes when both are categorical."""
    w, c = df["workload"], df["node_class"]
    if isinstance(w.dtype, pd.CategoricalDtype) and isinstance(c.dtype, pd.CategoricalDtype):
        return w.cat.codes.to_numpy().astype(np.int64) * len(c.cat.categories) + c.cat.codes.to_numpy()
    return df.groupby(["workload", "node_class"], observed=True, sort=False).ngroup().to_numpy()


def _group_medians(values: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Median of `values` per group code (NaN for a group without values)."""
    out = np.full(n_groups, np.nan)
    if values.size == 0:
        return out
    if np.all(codes[1:] >= codes[:-1]):  # already grouped (the usual case): no sort
        sorted_codes, sorted_vals = codes, values
    else:
        order = np.argsort(codes, kind="stable")
        sorted_codes, sorted_vals = codes[order], values[order]
    starts = np.concatenate([[0], np.flatnonzero(np.diff(sorted_codes)) + 1])
    ends = np.concatenate([starts[1:], [len(sorted_codes)]])
    for s, e in zip(starts, ends):
        out[sorted_codes[s]] = np.median(sorted_vals[s:e])
    return out


def stale_mask(df: pd.DataFrame, stale_after_s: float) -> np.ndarray:
    """Rows repeating their pod's previous FPS exactly, in a run lasting longer than `stale_after_s`."""
    if df.empty:
        return np.zeros(0, dtype=bool)
    pod_codes = df["pod"].cat.codes.to_numpy() if isinstance(df["pod"].dtype, pd.CategoricalDtype) \
        else pd.factorize(df["pod"])[0]
    t_all = df["t_s"].to_numpy()
    same_pod = pod_codes[1:] == pod_codes[:-1]
    if np.all((pod_codes[1:] > pod_codes[:-1]) | (same_pod & (t_all[1:] >= t_all[:-1]))):
        order = np.arange(len(df))  # already sorted by pod then time: no sort
    else:
        order = np.lexsort((t_all, pod_codes))
    pod = pod_codes[order]
    fps = df["fps"].to_numpy(dtype=float)[order]
    t = df["t_s"].to_numpy(dtype=float)[order]
    new_run = np.ones(len(order), dtype=bool)
    new_run[1:] = (pod[1:] != pod[:-1]) | (fps[1:] != fps[:-1])
    run_id = np.cumsum(new_run) - 1
    run_start_t = t[new_run][run_id]
    run_end_t = np.maximum.reduceat(t, np.flatnonzero(new_run))[run_id]
    stale_sorted = (~new_run) & (run_end_t - run_start_t > stale_after_s) & (fps > 0)
    out = np.zeros(len(order), dtype=bool)
    out[order] = stale_sorted
    return out


def clean_samples(df: pd.DataFrame, rules: HygieneRules = HygieneRules()) -> tuple[pd.DataFrame, PairCounts]:
    """Apply the rules above. `df` has the SAMPLE_COLUMNS, optionally `node_power_w`."""
    counts: PairCounts = {}
    if df.empty:
        return df.copy(), counts
    df = df.reset_index(drop=True)
    power = df["power_w"].to_numpy(dtype=float).copy()
    fps = df["fps"].to_numpy(dtype=float)
    drop = np.zeros(len(df), dtype=bool)

    def rule(mask: np.ndarray, reason: str) -> None:
        nonlocal drop
        mask = mask & ~drop
        add_counts(counts, df, mask, reason)
        drop |= mask

    rule(~np.isfinite(power) | ~np.isfinite(fps), "non_finite")
    with np.errstate(invalid="ignore"):
        rule((power < 0) | (fps < 0), "negative")
    codes = _group_codes(df)
    n_groups = int(codes.max()) + 1
    # Unit slips first: a mJ/J slip of a 50 W pod reads 50 kW and must be rescaled, not dropped.
    usable = np.flatnonzero(~drop & (power > 0))
    med = _group_medians(power[usable], codes[usable], n_groups)[codes]
    with np.errstate(divide="ignore", invalid="ignore"):
        band = rules.unit_slip_band
        high = ~drop & (power > 100 * med) & (power / 1000 <= band * med) & (power / 1000 >= med / band)
        low = ~drop & (power > 0) & (power < med / 100) & (power * 1000 <= band * med) & (power * 1000 >= med / band)
    add_counts(counts, df, high | low, "unit_slip_rescaled")
    power[high] /= 1000.0
    power[low] *= 1000.0
    with np.errstate(invalid="ignore"):
        rule(power > rules.max_pod_power_w, "absurd_power")
        if "node_power_w" in df:
            node_w = df["node_power_w"].to_numpy(dtype=float)
            rule(np.isfinite(node_w) & (power > node_w * rules.node_margin), "pod_above_node")
    rule((power == 0) & (fps > 0), "zero_power")
    kidx = np.flatnonzero(~drop)
    if kidx.size:
        mad = _group_medians(np.abs(power[kidx] - med[kidx]), codes[kidx], n_groups)[codes]
        with np.errstate(invalid="ignore"):
            rule((power > rules.spike_ratio * med) & (power > med + rules.spike_mads * np.maximum(mad, 1e-9)), "spike")
    rule(stale_mask(df, rules.stale_after_s), "stale")

    out = df.loc[~drop].copy()
    out["power_w"] = power[~drop]
    return out.reset_index(drop=True), counts


def count_reset_events(reset_steps: pd.DataFrame, pair_at: pd.DataFrame, step_s: float) -> tuple[PairCounts, int]:
    """Counter resets as events, not as series: one Kepler restart resets every energy counter of
    its node (every container of every pod) at the same moment, and that is ONE reset.

    `reset_steps` has one row per (kepler_node, namespace, pod_name, t_s) step whose window held a
    reset (`promql.pod_reset_steps`). Per Kepler node, steps no more than one step apart form one
    event. `pair_at` (namespace, pod_name, t_s, workload, node_class) places each pod at each time,
    so an event is charged to the pairs its pods belonged to then. Returns, per pair,
    {"counter_resets": events that touched it}, and the number of events in all. Two restarts of
    one exporter within a reset window count as one.
    """
    if reset_steps.empty:
        return {}, 0
    rs = reset_steps.sort_values(["kepler_node", "t_s"]).reset_index(drop=True)
    node_codes = pd.factorize(rs["kepler_node"])[0]
    t = rs["t_s"].to_numpy(dtype=float)
    new_event = np.ones(len(rs), dtype=bool)
    new_event[1:] = (node_codes[1:] != node_codes[:-1]) | (t[1:] - t[:-1] > 1.5 * step_s)
    rs["event"] = np.cumsum(new_event) - 1
    total = int(rs["event"].iloc[-1]) + 1
    if pair_at.empty:
        return {}, total
    lookup = pair_at[["namespace", "pod_name", "t_s", "workload", "node_class"]].dropna(subset=["t_s"])
    lookup = lookup.astype({"t_s": float, "workload": str, "node_class": str}).sort_values("t_s")
    placed = pd.merge_asof(rs.astype({"t_s": float}).sort_values("t_s"), lookup, on="t_s",
                           by=["namespace", "pod_name"], direction="nearest")
    placed = placed.dropna(subset=["workload", "node_class"])
    counts: PairCounts = {}
    for (w, c), n in placed.groupby(["workload", "node_class"])["event"].nunique().items():
        counts[(str(w), str(c))] = {"counter_resets": int(n)}
    return counts, total
