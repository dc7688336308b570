"""Samples (one row per pod and time) to energy models per (workload, node class), plus a report.

Pure: no Prometheus, no clock, no files, so the benchmark and the tests run it on in-memory data.
Per pair: clean the samples (`hygiene.clean_samples`), fit a `ReplicaPowerModel` (power W of one
replica against its FPS) on the first 80% of the pair's own time range, measure its error on the
last 20%, then refit on everything for the model that ships. Pairs with too little data keep their
prior. Each fitted pair also comes out as a `model_gate.Candidate` (`FitResult.candidates`: both
models and the samples with the hold-out marked), which the refitter judges against the model in use. The hold-out is per pair because pairs need not span the whole range: a pod rescheduled
onto another node class halfway gives one pair in the first half and another in the second.

Before fitting, each pair's clean samples are tested for a change of the power-vs-FPS relation
(`models/regime.find_change`: a model upgrade halfway through the range). When one is found the
pair is fitted on the samples since the change only (its hold-out the last part of those), the
change is in `FitResult.changes` and the report's `regime_change_s`, and the samples before it are
counted in `samples_before_change`. When none is found, the newest samples are compared with the
ones before (`models/regime.recent_drift`): a change too recent to date is in `FitResult.drifts`
and the report's `recent_drift`, so the refitter can look again soon. `FitSettings.regime` None
turns both tests off.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from wattwise.models.energy import WorkloadClassModel, estimate_capacity_fps, with_known_capacity
from wattwise.models.model_gate import Candidate, Evidence, mape as power_mape
from wattwise.models.regime import RecentDrift, RegimeChange, RegimeSettings, find_change, recent_drift
from wattwise.models.replica_model import ReplicaPowerModel
from wattwise.telemetry.hygiene import HygieneRules, PairCounts, clean_samples, merge_counts

log = logging.getLogger(__name__)

PriorFor = Callable[[str, str], "WorkloadClassModel | None"]


@dataclass(frozen=True)
class FitSettings:
    holdout_fraction: float = 0.2
    min_train_samples: int = 30
    min_holdout_samples: int = 5
    min_fps_span: float = 0.5      # FPS range the training data must cover to fit a slope
    degree: int = 2
    rules: HygieneRules = HygieneRules()
    regime: RegimeSettings | None = RegimeSettings()   # None: fit the whole range even if the cost changed


@dataclass
class FitResult:
    models: list[WorkloadClassModel]
    pairs: list[dict]
    holdout_from_s: float | None   # the hold-out boundary of the whole range; each pair has its own
    holdout_fraction: float
    extra: dict = field(default_factory=dict)
    candidates: dict[tuple[str, str], Candidate] = field(default_factory=dict)  # fitted pairs only
    changes: dict[tuple[str, str], RegimeChange] = field(default_factory=dict)   # pairs fitted since a change
    drifts: dict[tuple[str, str], RecentDrift] = field(default_factory=dict)   # no change found, newest samples off

    def report(self) -> dict:
        return {"pairs": self.pairs,
                "holdout": {"last_fraction_of_range": self.holdout_fraction,
                            "range": "each pair's own (pairs[].holdout_from_s)"},
                "units": {"holdout_mape": "fraction (0.05 = 5%)", "power": "W", "fps": "frames/s"},
                **self.extra}


def _fit_degree(fps: np.ndarray, power_w: np.ndarray, degree: int) -> ReplicaPowerModel:
    """Quadratic unless the curve would fall somewhere in the FPS range seen: then linear."""
    model = ReplicaPowerModel(degree=degree).fit(fps[:, None], power_w)
    if degree == 2:
        slope_ends = model.coef_[0] + 2 * model.coef_[1] * np.array([fps.min(), fps.max()])
        if (slope_ends < 0).any():
            model = ReplicaPowerModel(degree=1).fit(fps[:, None], power_w)
    return model


def _errors(model: ReplicaPowerModel, fps: np.ndarray, power_w: np.ndarray) -> tuple[float | None, float | None]:
    if fps.size == 0:
        return None, None
    pred = model.predict(fps[:, None])
    return power_mape(pred, power_w), float(np.mean(np.abs(pred - power_w)))


def _power_at(model: WorkloadClassModel | ReplicaPowerModel | None, fps: float | None) -> float | None:
    if model is None or fps is None:
        return None
    power = model.power if isinstance(model, WorkloadClassModel) else model
    return round(float(power.power_w(fps)), 4)


@dataclass(frozen=True)
class PairRows:
    """One pair's clean samples as arrays (any order)."""

    t_s: np.ndarray
    fps: np.ndarray
    power_w: np.ndarray
    drop_fps: np.ndarray
    requested_fps: np.ndarray   # the rate each was asked for, NaN where unknown

    @classmethod
    def empty(cls) -> "PairRows":
        return cls(*(np.zeros(0) for _ in range(5)))

    def __len__(self) -> int:
        return len(self.t_s)

    def since(self, t_s: float) -> "PairRows":
        keep = self.t_s >= t_s
        return PairRows(self.t_s[keep], self.fps[keep], self.power_w[keep], self.drop_fps[keep],
                        self.requested_fps[keep])


def fit_pair(workload: str, node_class: str, rows: PairRows, holdout_from_s: float,
             settings: FitSettings, prior: WorkloadClassModel | None,
             source: str) -> tuple[WorkloadClassModel | None, dict, Candidate | None]:
    """One pair's model, report entry, and the candidate when it was fitted. `rows` are already clean."""
    fps, power_w, drop = rows.fps, rows.power_w, rows.drop_fps
    train = rows.t_s < holdout_from_s
    entry = {"workload": workload, "node_class": node_class, "samples_used": int(len(rows)),
             "fps_min": None, "fps_median": None, "fps_max": None, "capacity_fps": None,
             "holdout_mape": None, "holdout_mae_w": None, "power_w_at_fps_min": None,
             "power_w_at_fps_median": None, "power_w_at_fps_max": None, "prior": True, "note": ""}
    if len(rows):
        entry.update(fps_min=round(float(fps.min()), 4), fps_median=round(float(np.median(fps)), 4),
                     fps_max=round(float(fps.max()), 4))
    n_train, n_test = int(train.sum()), int((~train).sum())
    span = float(np.ptp(fps[train])) if n_train else 0.0
    problem = ""
    if n_train < settings.min_train_samples:
        problem = f"{n_train} training samples (< {settings.min_train_samples})"
    elif n_test < settings.min_holdout_samples:
        problem = f"{n_test} hold-out samples (< {settings.min_holdout_samples})"
    elif span < settings.min_fps_span:
        problem = f"FPS spans only {span:.2f} frames/s (< {settings.min_fps_span})"
    if problem:
        entry["note"] = f"kept prior: {problem}" if prior else f"no model: {problem} and no prior"
        if prior is not None:
            entry["capacity_fps"] = round(prior.capacity_fps, 4)
            for key, value in (("min", entry["fps_min"]), ("median", entry["fps_median"]), ("max", entry["fps_max"])):
                entry[f"power_w_at_fps_{key}"] = _power_at(prior, value)
        return prior, entry, None

    trial = _fit_degree(fps[train], power_w[train], settings.degree)
    mape, mae = _errors(trial, fps[~train], power_w[~train])
    final = _fit_degree(fps, power_w, settings.degree)
    capacity, capacity_std, saturated = estimate_capacity_fps(fps, drop, rows.requested_fps)
    seen = WorkloadClassModel(workload=workload, node_class=node_class, power=final, capacity_fps=capacity,
                              capacity_std_fps=capacity_std, prior=False, n_samples=int(len(rows)), source=source)
    model = with_known_capacity(seen, saturated, prior)
    note = ""
    if not saturated:
        note = "the replica was never seen saturated: " + (
            f"kept the prior's capacity (the {capacity:.1f} fps seen is a lower bound)"
            if model.capacity_fps > capacity else "capacity is a lower bound")
    entry.update(capacity_fps=round(model.capacity_fps, 4), holdout_mape=None if mape is None else round(mape, 6),
                 holdout_mae_w=None if mae is None else round(mae, 4), prior=False, note=note)
    for key in ("min", "median", "max"):
        entry[f"power_w_at_fps_{key}"] = _power_at(final, entry[f"fps_{key}"])
    return model, entry, Candidate(model, trial, Evidence(fps, power_w, ~train), saturated)


def _split_by_pair(clean: pd.DataFrame) -> dict[tuple[str, str], PairRows]:
    """Arrays per (workload, node_class), by one sort instead of a DataFrame per group."""
    if clean.empty:
        return {}
    grouped = clean.groupby(["workload", "node_class"], observed=True, sort=True)
    codes = grouped.ngroup().to_numpy()  # numbered in the same (sorted) order as size()'s index
    names = list(grouped.size().index)
    order = np.arange(len(codes)) if np.all(codes[1:] >= codes[:-1]) else np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    bounds = np.flatnonzero(np.diff(sorted_codes)) + 1
    starts, ends = np.concatenate([[0], bounds]), np.concatenate([bounds, [len(order)]])
    cols = {c: clean[c].to_numpy(dtype=float)[order] for c in ("t_s", "fps", "power_w")}
    drop = clean["drop_fps"].fillna(0.0).to_numpy(dtype=float)[order] if "drop_fps" in clean else np.zeros(len(order))
    asked = clean["requested_fps"].to_numpy(dtype=float)[order] if "requested_fps" in clean \
        else np.full(len(order), np.nan)
    out = {}
    for s, e in zip(starts, ends):
        w, c = names[sorted_codes[s]]
        out[(str(w), str(c))] = PairRows(cols["t_s"][s:e], cols["fps"][s:e], cols["power_w"][s:e], drop[s:e],
                                         asked[s:e])
    return out


def fit_energy_models(samples: pd.DataFrame, *, prior_for: PriorFor | None = None,
                      nodes_by_class: dict[str, list[str]] | None = None,
                      exclusions: PairCounts | None = None, settings: FitSettings = FitSettings(),
                      source: str = "measured", expected_pairs: list[tuple[str, str]] = ()) -> FitResult:
    """Fit every (workload, node_class) in `samples` (SAMPLE_COLUMNS, optionally `node_power_w` and
    `requested_fps`, the rate each replica was asked for: delivering below it is saturation too).

    `exclusions` are counts already made upstream (missing series, gaps) and are merged into each
    pair's `samples_excluded`. `expected_pairs` are reported even when no sample survived.
    """
    clean, counts = clean_samples(samples, settings.rules)
    counts = merge_counts(exclusions or {}, counts)
    if len(samples):
        t0, t1 = float(samples["t_s"].min()), float(samples["t_s"].max())
        holdout_from_s = t0 + (1.0 - settings.holdout_fraction) * (t1 - t0)
    else:
        holdout_from_s = None
    seen_nodes: dict[str, set[str]] = {}
    for c, nodes in (nodes_by_class or {}).items():
        seen_nodes.setdefault(c, set()).update(nodes)
    if len(clean):
        for (c, n), _ in clean.groupby(["node_class", "node"], observed=True, sort=False).size().items():
            seen_nodes.setdefault(str(c), set()).add(str(n))

    groups = _split_by_pair(clean)
    keys = sorted(set(groups) | set(counts) | set(expected_pairs))
    models, pairs, candidates, changes, drifts = [], [], {}, {}, {}
    for workload, node_class in keys:
        if workload in ("", "?") or node_class in ("", "?"):
            continue
        rows = groups.get((workload, node_class), PairRows.empty())
        prior = prior_for(workload, node_class) if prior_for else None
        change = find_change(rows.t_s, rows.fps, rows.power_w, settings.regime) if settings.regime else None
        if change is not None:
            changes[(workload, node_class)] = change
            rows = rows.since(change.at_s)
        elif settings.regime:
            drift = recent_drift(rows.t_s, rows.fps, rows.power_w, settings.regime)
            if drift is not None:
                drifts[(workload, node_class)] = drift
        if len(rows):
            t0, t1 = float(rows.t_s.min()), float(rows.t_s.max())
            pair_holdout_from_s = t0 + (1.0 - settings.holdout_fraction) * (t1 - t0)
        else:
            pair_holdout_from_s = float("inf")
        model, entry, candidate = fit_pair(workload, node_class, rows, pair_holdout_from_s, settings, prior, source)
        if candidate is not None:
            candidates[(workload, node_class)] = candidate
        entry["holdout_from_s"] = pair_holdout_from_s if len(rows) else None
        entry["regime_change_s"] = None if change is None else change.at_s
        entry["regime_power_shift"] = None if change is None else round(change.power_shift, 4)
        entry["samples_before_change"] = 0 if change is None else change.n_before
        drift = drifts.get((workload, node_class))
        entry["recent_drift"] = None if drift is None else {"from_s": drift.from_s, "samples": drift.n_tail,
                                                             "power_shift": round(drift.power_shift, 4)}
        entry["nodes"] = sorted(seen_nodes.get(node_class, ()))
        entry["samples_excluded"] = dict(sorted(counts.get((workload, node_class), {}).items()))
        ordered = {k: entry[k] for k in ("workload", "node_class", "nodes", "samples_used", "samples_excluded")}
        ordered.update({k: v for k, v in entry.items() if k not in ordered})
        pairs.append(ordered)
        if model is not None:
            models.append(model)
    unattributed = {f"{w}|{c}": v for (w, c), v in counts.items() if w in ("", "?") or c in ("", "?")}
    log.info("fitted %d pairs (%d kept their prior)", len(pairs), sum(p["prior"] for p in pairs))
    return FitResult(models=models, pairs=pairs, holdout_from_s=holdout_from_s,
                     holdout_fraction=settings.holdout_fraction, candidates=candidates, changes=changes,
                     drifts=drifts,
                     extra={"samples_total": int(len(samples)),
                            "unattributed_excluded": unattributed})
