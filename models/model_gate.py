"""The quality gate a newly fitted energy model passes before it replaces the one in use.

Pure: the candidate (what the fit would ship, the model fitted on its training part only, and the
samples), the model in use and the pair's prior in; a `GateDecision` out. A candidate for a
(workload, node class) pair is accepted only when all of these hold (every failure is one line of
`reasons`, with a category to count it under):

- capacity: a candidate's capacity is measured only when its replicas were seen saturated
  (`Candidate.saturated`); otherwise it is a lower bound, and the capacity of the model in use (or
  the prior) stands when higher (`energy.with_known_capacity`): a quiet window never lowers a
  capacity. The rules below judge the candidate with that capacity, the one it would ship.
- `samples`: at least `min_samples` (200) clean samples, `min_holdout_samples` (40) of them in
  the hold-out. 200 samples are 50 minutes of one pod at a 15 s step, and the hold-out's 40 keep
  the sampling error of its MAPE near 1% at Kepler's few-percent noise; `wattwise fit` alone
  fits from 30, but a model that replaces one already in use must show more.
- `fps_range`: the FPS seen spans at least `min_fps_spread` (30%) of the candidate's capacity.
  The planner reads the curve from few FPS up to capacity; a slope fitted over a narrower band
  amplifies its error more than threefold at the ends.
- `holdout_error`: the MAPE of power on the hold-out window (the last part of the pair's range,
  predicted by the model fitted without it) below `max_holdout_mape` (10%). Classes the planner
  compares often differ by about that (TEE overheads are 4-10%): a worse model could swap them.
- `implausible`: power does not fall as FPS rises anywhere in the observed range; the standing
  power (intercept) is within 0 and the class's maximum power, and so is the power at the highest
  FPS seen; the capacity lies within the FPS observed or within the prior's (mean +- 2 std).
- `worse_than_current`: on the same hold-out samples, its error is no higher than the model in
  use (the current one, or the prior while the pair has none), and below a measured model's by more
  than `min_improvement` (1 percentage point, the sampling error of the hold-out's MAPE above):
  a refit on a world that did not change keeps the model in use, so models (and plans) do not
  churn on noise. (Without the margin, half the refits of an unchanged world replaced the model:
  the candidate and the model in use both predict the new hold-out out of sample, a coin toss.)

Rejected, the pair keeps its current measured model (`kept-current`), or stays on its prior
(`kept-prior`: `model` is the prior, None when the class has none).

After a change of the pair's power-vs-FPS relation (`regime`, found by `models/regime.py`), the
candidate is fitted on the samples since the change and every rule above applies to those: its
hold-out is their last part, and the model in use is judged on the same post-change hold-out. Too
few of them keeps the model in use with "regime change at <time> ..., N samples since: waiting for
more" (category `samples`); the decision carries the change either way (`regime_change_s`), and a
waiting one how many more samples since the change it needs (`samples_needed`: up to the minimum,
and up to what puts `min_holdout_samples` in the hold-out at the hold-out's share so far; 0 when
not fitted with the minimum already in), so the refitter can come back when they are due instead
of a whole period later.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import Enum

import numpy as np

from wattwise.models.energy import WorkloadClassModel, with_known_capacity
from wattwise.models.reason import Reason
from wattwise.models.regime import RegimeChange
from wattwise.models.replica_model import ReplicaPowerModel


class Verdict(Enum):
    ACCEPTED = "accepted"
    KEPT_CURRENT = "kept-current"
    KEPT_PRIOR = "kept-prior"


@dataclass(frozen=True)
class GateSettings:
    min_samples: int = 200
    min_holdout_samples: int = 40
    min_fps_spread: float = 0.30        # (max - min FPS seen) / capacity
    max_holdout_mape: float = 0.10
    default_max_power_w: float = 2000.0  # a class whose maximum is unknown: hygiene's absurd-power bound
    capacity_tolerance: float = 0.05    # slack on the observed FPS range when judging the capacity
    min_improvement: float = 0.01       # hold-out MAPE a candidate must gain over a measured model in use


@dataclass(frozen=True, eq=False)
class Evidence:
    """The clean samples a candidate was fitted on: FPS, power (W), and which are the hold-out."""

    fps: np.ndarray
    power_w: np.ndarray
    holdout: np.ndarray  # bool, True for a hold-out sample

    def __len__(self) -> int:
        return int(self.fps.size)

    @property
    def n_holdout(self) -> int:
        return int(np.count_nonzero(self.holdout))


@dataclass(frozen=True, eq=False)
class Candidate:
    """`model` is what ships if accepted (fitted on every sample); `holdout_power` the same fit on
    the training part only, so its hold-out error is an honest one. `saturated`: its capacity was
    measured from saturated samples (False: a lower bound)."""

    model: WorkloadClassModel
    holdout_power: ReplicaPowerModel
    evidence: Evidence
    saturated: bool = False


@dataclass(frozen=True)
class GateDecision:
    workload: str
    node_class: str
    verdict: Verdict
    model: WorkloadClassModel | None  # the one to use from now on; None: no model (plans from its prior)
    reasons: tuple[Reason, ...]
    candidate_mape: float | None = None
    incumbent_mape: float | None = None  # the model in use, on the same hold-out samples
    regime: RegimeChange | None = None   # the relation changed: judged on the samples since
    samples_needed: int = 0              # > 0: waits for this many more samples since the change

    @property
    def accepted(self) -> bool:
        return self.verdict is Verdict.ACCEPTED

    def summary(self) -> str:
        return f"{self.workload} on {self.node_class}: {self.verdict.value}: {'; '.join(self.reasons)}"

    def as_dict(self) -> dict:
        return {"workload": self.workload, "node_class": self.node_class, "verdict": self.verdict.value,
                "reasons": list(self.reasons), "categories": [r.category for r in self.reasons],
                "candidate_holdout_mape": self.candidate_mape, "current_holdout_mape": self.incumbent_mape,
                "regime_change_s": None if self.regime is None else self.regime.at_s,
                "regime_power_shift": None if self.regime is None else round(self.regime.power_shift, 4),
                "samples_needed": self.samples_needed}


def mape(predicted: np.ndarray, actual: np.ndarray) -> float | None:
    """Mean absolute percentage error (a fraction) over the samples with positive power; None if none."""
    predicted, actual = np.asarray(predicted, dtype=float), np.asarray(actual, dtype=float)
    pos = actual > 0
    if not pos.any():
        return None
    with np.errstate(over="ignore"):  # power near zero: an unbounded error is the right answer
        return float(np.mean(np.abs(predicted[pos] - actual[pos]) / actual[pos]))


def _power_mape(power: ReplicaPowerModel, fps: np.ndarray, power_w: np.ndarray) -> float | None:
    if fps.size == 0:
        return None
    return mape(power.predict(fps[:, None]), power_w)


def _slope_w_per_fps(power: ReplicaPowerModel, fps: float) -> float:
    coef = [float(c) for c in power.coef_]
    return coef[0] + (2.0 * coef[1] * fps if len(coef) > 1 else 0.0)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2%}"


def _plausibility(c: Candidate, prior: WorkloadClassModel | None, max_power_w: float,
                  s: GateSettings, capacity_known: bool = False) -> list[Reason]:
    m, fps = c.model, c.evidence.fps
    lo, hi = float(fps.min()), float(fps.max())
    out = []
    for f in (lo, hi):
        slope = _slope_w_per_fps(m.power, f)
        if slope < 0:
            out.append(Reason(f"implausible: power falls as FPS rises ({slope:.3g} W per fps at {f:.1f} fps)",
                              "implausible"))
            break
    if not 0.0 <= m.intercept_w <= max_power_w:
        out.append(Reason(f"implausible: standing power {m.intercept_w:.1f} W is outside 0-{max_power_w:.0f} W "
                          "(the class's maximum)", "implausible"))
    top_w = m.power.power_w(hi)
    if not math.isfinite(top_w) or top_w > max_power_w:
        out.append(Reason(f"implausible: {top_w:.0f} W at {hi:.1f} fps is above the class's maximum "
                          f"{max_power_w:.0f} W", "implausible"))
    tol = s.capacity_tolerance
    observed = lo * (1 - tol) <= m.capacity_fps <= hi * (1 + tol)
    band = None
    if prior is not None:
        spread = max(2.0 * prior.capacity_std_fps, tol * prior.capacity_fps)
        band = (prior.capacity_fps - spread, prior.capacity_fps + spread)
    if not capacity_known and not observed and not (band and band[0] <= m.capacity_fps <= band[1]):
        prior_text = f" or the prior's {band[0]:.1f}-{band[1]:.1f}" if band else ""
        out.append(Reason(f"implausible: capacity {m.capacity_fps:.1f} fps is outside the {lo:.1f}-{hi:.1f} fps "
                          f"observed{prior_text}", "implausible"))
    return out


def judge(workload: str, node_class: str, candidate: Candidate | None, current: WorkloadClassModel | None,
          prior: WorkloadClassModel | None, max_power_w: float | None = None,
          settings: GateSettings = GateSettings(), missing: str = "no fitted model",
          regime: RegimeChange | None = None) -> GateDecision:
    """Whether `candidate` replaces `current` for the pair (see the module's rules).

    `current` is the model in use (None while the pair plans from its prior), `prior` the pair's
    hardware prior, `max_power_w` the class's maximum power (unknown: the settings' default).
    `missing` says why there is no candidate, when there is none. `regime`: the pair's relation
    changed, and the candidate is fitted on the samples since."""
    s = settings
    keep_verdict = Verdict.KEPT_CURRENT if current is not None and not current.prior else Verdict.KEPT_PRIOR
    keep_model = current if current is not None else prior
    if candidate is None or len(candidate.evidence) == 0:
        if regime is not None:
            text = f"{regime.describe()}, {regime.n_since} samples since: waiting for more ({missing})"
            return GateDecision(workload, node_class, keep_verdict, keep_model, (Reason(text, "samples"),),
                                regime=regime, samples_needed=max(s.min_samples - regime.n_since, 0))
        reason = Reason(missing, "no_candidate") if candidate is None else \
            Reason("no samples behind the fitted model", "samples")
        return GateDecision(workload, node_class, keep_verdict, keep_model, (reason,))
    ev = candidate.evidence
    incumbent = current if current is not None else prior
    seen_fps = candidate.model.capacity_fps
    candidate = replace(candidate, model=with_known_capacity(candidate.model, candidate.saturated, incumbent))
    kept_capacity = candidate.model.capacity_fps != seen_fps   # the model in use's (or prior's), judged before
    max_w = s.default_max_power_w if max_power_w is None or not max_power_w > 0 else float(max_power_w)
    reasons: list[Reason] = []
    short = [f"{len(ev)} samples (needs {s.min_samples})"] if len(ev) < s.min_samples else []
    if ev.n_holdout < s.min_holdout_samples:
        short.append(f"{ev.n_holdout} hold-out samples (needs {s.min_holdout_samples})")
    needed = 0
    if short and regime is not None:
        reasons.append(Reason(f"{regime.describe()}, {len(ev)} samples since: waiting for more "
                              f"({', '.join(short)})", "samples"))
        total = max(s.min_samples, math.ceil(s.min_holdout_samples * len(ev) / max(ev.n_holdout, 1)))
        needed = max(total - len(ev), 1)
    else:
        reasons.extend(Reason(text, "samples") for text in short)
    lo, hi = float(ev.fps.min()), float(ev.fps.max())
    capacity = candidate.model.capacity_fps
    if not capacity > 0 or hi - lo < s.min_fps_spread * capacity:
        share = (hi - lo) / capacity if capacity > 0 else 0.0
        reasons.append(Reason(f"FPS seen spans {lo:.1f}-{hi:.1f}, {share:.0%} of the capacity {capacity:.1f} fps "
                              f"(needs {s.min_fps_spread:.0%})", "fps_range"))
    held_fps, held_w = ev.fps[ev.holdout], ev.power_w[ev.holdout]
    cand_mape = _power_mape(candidate.holdout_power, held_fps, held_w)
    if cand_mape is None or not cand_mape < s.max_holdout_mape:
        reasons.append(Reason(f"hold-out error {_pct(cand_mape)} (needs below {s.max_holdout_mape:.0%})",
                              "holdout_error"))
    reasons.extend(_plausibility(candidate, prior, max_w, s, kept_capacity))
    inc_mape = _power_mape(incumbent.power, held_fps, held_w) if incumbent is not None else None
    measured = incumbent is not None and not incumbent.prior
    margin = s.min_improvement if measured else 0.0
    if cand_mape is not None and inc_mape is not None and cand_mape > inc_mape - margin:
        which = "current model's" if measured else "prior's"
        text = (f"hold-out error {_pct(cand_mape)} is worse than the {which} {_pct(inc_mape)}" if cand_mape > inc_mape
                else f"hold-out error {_pct(cand_mape)} is not below the {which} {_pct(inc_mape)} by more than "
                     f"{margin:.1%} (the hold-out's sampling error)")
        reasons.append(Reason(text, "worse_than_current"))
    since = "" if regime is None else f" since the {regime.describe()}"
    if reasons:
        if regime is not None and not short:
            reasons.insert(0, Reason(f"judged on the {len(ev)} samples{since}", "regime_change"))
        return GateDecision(workload, node_class, keep_verdict, keep_model, tuple(reasons), cand_mape, inc_mape,
                            regime, needed)
    against = "no model in use" if incumbent is None else \
        f"{'prior' if incumbent.prior else 'current'} {_pct(inc_mape)}"
    text = f"{len(ev)} samples{since} over {lo:.1f}-{hi:.1f} fps, hold-out error {_pct(cand_mape)} ({against})"
    if kept_capacity:
        text += (f"; capacity {capacity:.1f} fps kept: no sample saturated, the {seen_fps:.1f} fps seen is a "
                 "lower bound")
    return GateDecision(workload, node_class, Verdict.ACCEPTED, candidate.model, (Reason(text, "accepted"),),
                        cand_mape, inc_mape, regime)
