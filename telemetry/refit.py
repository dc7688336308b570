"""The live refitter: `wattwise fit` on a schedule, behind the quality gate, into the models directory.

Every `every_s` (4 h) of the injected clock, a background thread fits the last `window_s` (24 h) of
Prometheus history with the code `wattwise fit` runs (`fit_cli.fit_from_prometheus`), judges each
(workload, node class) candidate against the model in use (`models.model_gate.judge`), and writes
the set with the accepted pairs into `file_name` (energy-models.json) of the models directory, the
`--models DIR` that `model_dir.ModelDirectory` watches: `persistence.save` into a temporary dot-file
(which ModelDirectory skips) and one `os.replace`, so a reader never sees half a file. When nothing
is accepted nothing is written, so the models' version, and with it the re-plan gate, stays put.

Node power curves (`FitRun.node_power`, fitted from Kepler's node power against utilisation by
`telemetry/node_curves.py`): a class's curve in the file is replaced only by one that passes the
plausibility check (`node_curves.curve_problems`: non-decreasing, idle > 0, max <= 5 kW) and
differs from it somewhere by more than `CURVE_CHANGE` (2%), so an unchanged cluster does not bump
the models' version every refit. The standby power (`sleep_w`), which Kepler cannot measure, is
carried over from the curve replaced. A class not fitted this time keeps its curve (or, with none
in the file, keeps whatever the live loop chose: a SPECpower curve or the prior). A class whose curve
another file of the directory holds is never written (ModelDirectory would take either), nor one the
live loop takes from its catalogue or a SPECpower curve of its CPU generation (`LiveNames.curve_sources`):
a Kepler fit would not be used there, and writing it would only bump the models' version (a re-plan).
Kepler's node power is CPU package power (RAPL), SPECpower's the whole server at the wall (power
supply, memory, fans, disks), so a Kepler-fitted curve reads below the same machine's SPECpower one. A file is
written when a pair is accepted or a curve changes.

The model in use per pair is what the directory holds. Pairs held by another file of the directory
are judged but never rewritten (ModelDirectory refuses a pair found in two files): they are kept,
and the decision says so. A directory that cannot be written to (a mounted ConfigMap) still gets
its decisions in the report, with why nothing was written; with a `LearnedOverlay` (`learned`, as
`serve` wires it over the directory the live loop reads), what it accepted is planned with all the
same, from memory ("learned, not persisted", `telemetry/learned.py`), and judged against as the
model in use by the next refit.

A pair whose power-vs-FPS relation changed within the window (a model upgrade: `models/regime.py`)
is fitted and judged on the samples since the change only, so the new cost is learned as soon as
the gate's minimum of samples has come in since, not once the old samples have left the window;
until then the pair keeps its model, and the decision says "regime change at <time> ..., N samples
since: waiting for more". The change's time is each decision's `regime_change_s`.

Such a wait does not last a whole period: when a refit's decisions include a pair waiting after a
change, the next refit is due when its missing samples should be in (`next_refit`): the samples
it still needs (`GateDecision.samples_needed`) at the rate seen since the change (samples since /
seconds from the change to the window's end), plus 10% and a scrape step (the newest scrape may
not be in Prometheus yet), counted from the window's end; never later than the normal `every_s`,
never sooner than `max(10 scrapes, 60 s)` after this refit's start (one read of the window per
10 scrapes at most, by when every live pod has added 10 samples). A pair that gained no samples
since the last refit (its pods stopped) is not waited for early: none are coming, so the next
refit is a period later unless another pair is still gathering.
A change that came too few samples before a refit for the change test to date it (it needs 30
on its side) is not missed for a whole period either: when the newest samples of a pair sit off
the ones before (`FitResult.drifts`, `models/regime.recent_drift`), the next refit is due once
30 more of its samples should be in, so the change is dated then (once per drift: a pair that
drifted at the last refit too waits for the period).
The early refit is a normal one (same fit, same gate, and it may schedule another early one).
`next_due_reason` in the report says which (`every ... s`, or `early: <pair> waits for N samples
after a change ...`).

Answers never wait on a refit: it runs in its own thread, and `last_report()` returns the last
finished report (per pair: accepted or kept, and why). The worker never raises: a failure
(Prometheus down, a model file that does not parse) is the report's `error`, with whether
retrying may help, and logged. One that retrying may help (Prometheus unreachable or timing out)
is tried again soon, `RETRY_FIRST_S` (60 s) after the first, doubling with each failure in a row,
never later than a period: a Prometheus restart must not cost the models a whole period. One that
retrying will not help until someone fixes it is tried again a period later. The first refit runs `first_after_s`
after construction (0: at once, so a service restarted more often than every `every_s` still learns).
The worker sleeps until the next refit is due, checking at least every `poll_s` (30 s), so a period
shorter than the poll is kept.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np

from wattwise.models import persistence
from wattwise.models.energy import WorkloadClassModel
from wattwise.models.errors import InvalidInputError
from wattwise.models.model_gate import GateDecision, GateSettings, Verdict, judge
from wattwise.models.power_curve import SPECPOWER_UTIL, PowerCurve
from wattwise.models.power_source import PowerCurveSource
from wattwise.models.reason import Reason
from wattwise.models.regime import RecentDrift, RegimeSettings
from wattwise.telemetry.fit_cli import FitJob, FitRun, fit_from_prometheus, prior_for_pair
from wattwise.telemetry.learned import NOT_PERSISTED, LearnedOverlay
from wattwise.telemetry.model_dir import model_files
from wattwise.telemetry.node_curves import NodeCurveFit, curve_problems

log = logging.getLogger(__name__)

Pair = tuple[str, str]
Runner = Callable[[float, float], FitRun]  # (start_s, end_s) -> the fit of that range
DEFAULT_GATE = GateSettings()
DEFAULT_REGIME = RegimeSettings()   # the change test `wattwise fit` runs (FitSettings.regime)
CURVE_CHANGE = 0.02   # a node curve is rewritten only when some point moves by more than this (relative)
MIN_WAIT_S = 0.05     # the worker's shortest sleep between checks (a refit overdue is started at once)
RETRY_FIRST_S = 60.0  # a retryable failure is tried again this long after, doubling per failure in a row
EARLY_FLOOR_SCRAPES = 10    # an early refit (a pair waits for samples after a change) comes no sooner than
EARLY_FLOOR_MIN_S = 60.0    # max(this many scrapes, this) after the one that scheduled it
EARLY_MARGIN = 0.10         # on the expected wait for the missing samples, plus one scrape step


@dataclass(frozen=True)
class LiveNames:
    """How the live loop names what it plans now: each node's class (its node watch) and the
    workload keys. A refit classes nodes kube_node_labels does not with these, and reports the
    pairs it named that the live loop does not plan (their models would be ignored)."""

    node_class_of: Mapping[str, str]
    workloads: frozenset[str]
    curve_sources: Mapping[str, str] | None = None   # class -> power_source.PowerCurveSource value; None: unknown

    def unmatched(self, pairs: Iterable[Pair]) -> list[Pair]:
        classes = set(self.node_class_of.values())
        return sorted(p for p in set(pairs) if p[0] not in self.workloads or p[1] not in classes)


UNMATCHED_HINT = ("the live loop plans no such pair, so their models are not used: workloads are named by the "
                  "pods' workload label in kube_pod_labels (kube-state-metrics v2 exports it only when allowlisted: "
                  "--metric-labels-allowlist=pods=[wattwise.io/workload]), else by the pod name; node classes by "
                  "kube_node_labels, else by serve's node watch")


@dataclass(frozen=True)
class CurveDecision:
    """What a refit did with one node class's power curve. `curve` is the file's curve after the
    refit (None: the file has none, the live loop keeps its SPECpower curve or prior)."""

    node_class: str
    replaced: bool
    curve: PowerCurve | None
    reason: str
    fitted: PowerCurve | None = None

    def as_dict(self) -> dict:
        return {"node_class": self.node_class, "verdict": "replaced" if self.replaced else "kept",
                "reason": self.reason,
                "idle_w": None if self.curve is None else self.curve.idle_w,
                "max_w": None if self.curve is None else self.curve.max_w,
                "fitted_power_w": None if self.fitted is None else list(self.fitted.power_w)}


@dataclass(frozen=True)
class RefitReport:
    """One refit. `error` is empty when it ran through; `written` the file written ("" if none) and
    `not_written` why models accepted were not written."""

    started_s: float
    finished_s: float
    start_s: float               # the window fitted
    end_s: float
    next_due_s: float
    decisions: tuple[GateDecision, ...] = ()
    written: str = ""
    not_written: str = ""
    error: str = ""
    retryable: bool = False
    node_power: tuple[CurveDecision, ...] = ()
    next_due_reason: str = ""    # "every ... s", or "early: <pair> waits for N samples after a change ..."
    drifts: Mapping[tuple[str, str], RecentDrift] = field(default_factory=dict)   # newest samples off, no change dated
    unmatched: tuple[Pair, ...] = ()   # pairs judged that the live loop does not plan (`LiveNames`)

    @property
    def ok(self) -> bool:
        return not self.error

    def accepted(self) -> list[GateDecision]:
        return [d for d in self.decisions if d.accepted]

    def decision(self, workload: str, node_class: str) -> GateDecision | None:
        return next((d for d in self.decisions if (d.workload, d.node_class) == (workload, node_class)), None)

    def curve_decision(self, node_class: str) -> CurveDecision | None:
        return next((d for d in self.node_power if d.node_class == node_class), None)

    def as_dict(self) -> dict:
        return {"ok": self.ok, "error": self.error, "retryable": self.retryable,
                "started_s": self.started_s, "finished_s": self.finished_s,
                "window": {"start_s": self.start_s, "end_s": self.end_s}, "next_due_s": self.next_due_s,
                "next_due_reason": self.next_due_reason,
                "written": self.written, "not_written": self.not_written,
                "pairs": [d.as_dict() for d in self.decisions],
                "unmatched_pairs": [f"{w} on {c}" for w, c in self.unmatched],
                "unmatched_hint": UNMATCHED_HINT if self.unmatched else "",
                "node_power": [d.as_dict() for d in self.node_power]}


@dataclass
class _InUse:
    own: dict[Pair, WorkloadClassModel] = field(default_factory=dict)
    node_power: dict[str, PowerCurve] = field(default_factory=dict)        # own file's
    elsewhere: dict[Pair, tuple[str, WorkloadClassModel]] = field(default_factory=dict)
    all_curves: dict[str, PowerCurve] = field(default_factory=dict)
    curves_elsewhere: dict[str, str] = field(default_factory=dict)         # class -> the other file holding it
    file_own: dict[Pair, WorkloadClassModel] = field(default_factory=dict)  # own file's, without what is learned
    file_curves: dict[str, PowerCurve] = field(default_factory=dict)


def _not_fitted(note: str | None) -> str:
    if note is None:
        return "no samples in the window"
    for prefix in ("kept prior: ", "no model: "):
        if note.startswith(prefix):
            note = note[len(prefix):]
    return f"not fitted: {note}" if note else "not fitted"


class Refitter:
    """`start()` the worker, `last_report()` from any thread, `stop()` at shutdown. `run_once()`
    refits now (the worker calls it when due); `runner` and `clock` are injectable for tests."""

    def __init__(self, job: FitJob, models_dir: str | Path, *, every_s: float = 4 * 3600.0,
                 window_s: float = 24 * 3600.0, first_after_s: float = 0.0, gate: GateSettings = DEFAULT_GATE,
                 max_power_w: Callable[[str], float | None] | None = None,
                 prior_for: Callable[[str, str], WorkloadClassModel | None] = prior_for_pair,
                 file_name: str = "energy-models.json", clock: Callable[[], float] = time.time,
                 runner: Runner | None = None, poll_s: float = 30.0, learned: LearnedOverlay | None = None):
        for name, value in (("every_s", every_s), ("window_s", window_s), ("poll_s", poll_s)):
            if not (math.isfinite(value) and value > 0):
                raise InvalidInputError(f"refit.{name}", f"must be a positive number of seconds, got {value!r}")
        if not file_name.endswith(".json") or file_name.startswith(".") or "/" in file_name:
            raise InvalidInputError("refit.file_name", f"{file_name!r} must be a plain *.json name not starting "
                                                       "with a dot (ModelDirectory reads only those)")
        self.dir = Path(models_dir)
        if not self.dir.is_dir():
            raise InvalidInputError("--models", f"{self.dir} is not a directory",
                                    "give the folder the refitter writes its models into")
        self.job, self.every_s, self.window_s, self.gate = job, float(every_s), float(window_s), gate
        self._max_power_w = max_power_w
        self._prior_for = prior_for
        self._file_name = file_name
        self._clock = clock
        self._runner: Runner = runner or self._fit
        self.live: Callable[[], LiveNames | None] | None = None   # serve's names, once it plans
        self._poll_s = float(poll_s)
        self.learned = learned              # accepted but not written: planned with from memory
        self._lock = threading.Lock()       # guards _report and _next_due_s
        self._run_lock = threading.Lock()   # one refit at a time
        self._report: RefitReport | None = None
        self._next_due_s = clock() + first_after_s
        self._failures = 0                  # retryable failures in a row
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def path(self) -> Path:
        return self.dir / self._file_name

    # -- the worker --------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="wattwise-refit", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask the worker to stop and wait up to `timeout_s` (a refit under way finishes first)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # run_once reports its own failures; this is a bug, and the worker lives on
                log.exception("refit worker: unexpected failure; trying again in %.0f s", self._poll_s)
            self._stop.wait(self._wait_s())

    def _wait_s(self) -> float:
        """Until the next refit is due, but at most `poll_s`: a period shorter than the poll
        (`--refit-every 10s`) is kept, not stretched to the poll."""
        with self._lock:
            left_s = self._next_due_s - self._clock()
        return min(self._poll_s, max(left_s, MIN_WAIT_S))

    def due(self) -> bool:
        with self._lock:
            return self._clock() >= self._next_due_s

    def tick(self) -> RefitReport | None:
        """Refit if due (on the injected clock); the new report, or None when not due."""
        return self.run_once() if self.due() else None

    def last_report(self) -> RefitReport | None:
        with self._lock:
            return self._report

    # -- one refit ---------------------------------------------------------------------------

    def run_once(self) -> RefitReport:
        """Refit the window ending now. Never raises: a failure is the report's `error`."""
        with self._run_lock:
            started_s = self._clock()
            step_s = self.job.step_s if self.job.step_s > 0 else 1.0
            end_s = math.floor(started_s / step_s) * step_s   # replicas asking at once fit the same range
            start_s = end_s - self.window_s
            next_due_s = started_s + self.every_s
            with self._lock:
                self._next_due_s = next_due_s
            try:
                report = self._refit(started_s, start_s, end_s, step_s)
                self._failures = 0
            except Exception as e:  # reported, never raised: the worker must outlive any failure
                retryable = bool(getattr(e, "retryable", False))
                error = str(e) or type(e).__name__
                self._failures = self._failures + 1 if retryable else 0
                wait_s, why = retry_after(self._failures, self.every_s)
                log.warning("refit of %.0f-%.0f failed (%s); %s; next try in %.0f s", start_s, end_s, error,
                            "retrying may help" if retryable else "retrying will not help until this is fixed",
                            wait_s)
                report = RefitReport(started_s, self._clock(), start_s, end_s, started_s + wait_s, error=error,
                                     retryable=retryable, next_due_reason=why)
            with self._lock:
                self._next_due_s = report.next_due_s
                self._report = report
            return report

    def _live_names(self) -> LiveNames | None:
        return self.live() if self.live is not None else None

    def _fit(self, start_s: float, end_s: float) -> FitRun:
        live = self._live_names()
        return fit_from_prometheus(self.job, start_s, end_s, node_class_of=live.node_class_of if live else None)

    def _refit(self, started_s: float, start_s: float, end_s: float, step_s: float) -> RefitReport:
        in_use = self._read_in_use()
        fitted = self._runner(start_s, end_s)
        result = fitted.result
        notes = {(str(p["workload"]), str(p["node_class"])): str(p.get("note") or "") for p in result.pairs}
        decisions = []
        for pair in sorted(set(notes) | set(in_use.own) | set(in_use.elsewhere)):
            held = in_use.elsewhere.get(pair)
            current = in_use.own.get(pair) or (held[1] if held else None)
            decision = judge(pair[0], pair[1], result.candidates.get(pair), current, self._prior_for(*pair),
                             self._class_max_w(pair[1], in_use), self.gate, _not_fitted(notes.get(pair)),
                             result.changes.get(pair))
            if decision.accepted and held:
                kept = Verdict.KEPT_CURRENT if current is not None and not current.prior else Verdict.KEPT_PRIOR
                decision = replace(decision, verdict=kept, model=current, reasons=decision.reasons + (
                    Reason(f"passed the gate but {held[0]} holds this pair and the refitter rewrites only "
                           f"{self._file_name}", "held_elsewhere"),))
            decisions.append(decision)
        accepted = [d for d in decisions if d.accepted]
        live = self._live_names()
        curves = judge_curves(fitted.node_power, in_use.node_power, in_use.curves_elsewhere, self._file_name,
                              live.curve_sources if live else None)
        replaced = [d for d in curves if d.replaced]
        written = not_written = ""
        if accepted or replaced:
            models = dict(in_use.own)
            models.update({(d.workload, d.node_class): d.model for d in accepted if d.model is not None})
            node_power = dict(in_use.node_power)
            node_power.update({d.node_class: d.curve for d in replaced if d.curve is not None})
            try:
                self._write(list(models.values()), node_power)
                written = str(self.path)
                if self.learned is not None:
                    self.learned.persisted()
            except OSError as e:
                if self.learned is None:
                    not_written = (f"cannot write {self.path} ({e.strerror or e}): the accepted models and curves "
                                   "are only in this report")
                else:
                    self.learned.learn(
                        {(d.workload, d.node_class): (d.model, in_use.file_own.get((d.workload, d.node_class)))
                         for d in accepted if d.model is not None},
                        {d.node_class: (d.curve, in_use.file_curves.get(d.node_class))
                         for d in replaced if d.curve is not None})
                    not_written = (f"cannot write {self.path} ({e.strerror or e}): the accepted models and curves "
                                   f"are planned with from memory ({NOT_PERSISTED}) until a restart")
        for d in decisions:
            worth_seeing = d.accepted or _refused_as_wrong(d) or d.regime is not None
            (log.info if worth_seeing else log.debug)("refit: %s", d.summary())
        for c in curves:
            (log.info if c.replaced else log.debug)("refit: node power of %s: %s", c.node_class, c.reason)
        log.info("refit of %.0f-%.0f: %d of %d pairs accepted, %d node power curve(s) replaced%s", start_s, end_s,
                 len(accepted), len(decisions), len(replaced),
                 f"; {not_written}" if not_written else (f", written to {written}" if written else ""))
        last = self._report
        unmatched = tuple(live.unmatched((d.workload, d.node_class) for d in decisions)) if live else ()
        if unmatched and (last is None or last.unmatched != unmatched):
            log.warning("refit: %d pair(s) match no pair the live loop plans (%s): %s", len(unmatched),
                        ", ".join(f"{w} on {c}" for w, c in unmatched[:5]) + (", ..." if len(unmatched) > 5 else ""),
                        UNMATCHED_HINT)
        drifts = dict(result.drifts)
        next_due_s, why = next_refit(started_s, end_s, self.every_s, step_s, decisions,
                                     last.decisions if last is not None else (), drifts,
                                     last.drifts if last is not None else {})
        if why.startswith("early"):
            log.info("refit: next refit in %.0f s, not %.0f s: %s", next_due_s - started_s, self.every_s, why)
        return RefitReport(started_s, self._clock(), start_s, end_s, next_due_s, tuple(decisions), written,
                           not_written, node_power=tuple(curves), next_due_reason=why, drifts=drifts,
                           unmatched=unmatched)

    def _read_in_use(self) -> _InUse:
        """The models in use, from the directory (the files ModelDirectory reads: `model_files`)."""
        out = _InUse()
        for p in model_files(self.dir):
            models, curves = persistence.load(p)
            out.all_curves.update(curves)
            if p.name == self._file_name:
                out.own = {(m.workload, m.node_class): m for m in models}
                out.node_power = dict(curves)
            else:
                out.elsewhere.update({(m.workload, m.node_class): (p.name, m) for m in models})
                out.curves_elsewhere.update({c: p.name for c in curves})
        out.file_own, out.file_curves = dict(out.own), dict(out.node_power)
        if self.learned is not None:    # in use, though only in memory
            learned_models, learned_curves = self.learned.learned()
            out.own.update(learned_models)
            out.node_power.update(learned_curves)
            out.all_curves.update(learned_curves)
        return out

    def _class_max_w(self, node_class: str, in_use: _InUse) -> float | None:
        if self._max_power_w is not None:
            value = self._max_power_w(node_class)
            if value is not None:
                return value
        curve = in_use.all_curves.get(node_class)
        return curve.max_w if curve is not None else None

    def _write(self, models: list[WorkloadClassModel], node_power: dict[str, PowerCurve]) -> None:
        """A unique dot-file (replicas sharing the directory never write into one another's), then one rename."""
        fd, name = tempfile.mkstemp(dir=self.dir, prefix=f".{self._file_name}.", suffix=".tmp")
        os.close(fd)
        tmp = Path(name)
        try:
            persistence.save(tmp, models, node_power)
            tmp.chmod(0o644)  # mkstemp's 0600 would hide it from readers running as another user
            _fsync(tmp)       # on disk before the rename: a crash then leaves the old file or the new, not an empty one
            os.replace(tmp, self.path)
            _fsync(self.dir)  # and the rename itself
        finally:
            tmp.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def retry_after(failures: int, every_s: float) -> tuple[float, str]:
    """Seconds until the next try after `failures` retryable failures in a row (0: a failure that
    retrying will not help: a period), and why."""
    if failures <= 0:
        return every_s, _every(every_s)
    wait_s = min(every_s, RETRY_FIRST_S * 2 ** min(failures - 1, 30))
    return wait_s, (f"retry {failures} after a failure that retrying may help: in {wait_s:.0f} s"
                    if wait_s < every_s else _every(every_s))


def _every(every_s: float) -> str:
    return f"every {every_s:.0f} s"


def next_refit(started_s: float, end_s: float, every_s: float, step_s: float,
               decisions: Iterable[GateDecision],
               previous: Iterable[GateDecision] = (),
               drifts: Mapping[tuple[str, str], RecentDrift] | None = None,
               previous_drifts: Mapping[tuple[str, str], RecentDrift] | None = None,
               regime: RegimeSettings = DEFAULT_REGIME) -> tuple[float, str]:
    """When the refit that started at `started_s` (its window ending at `end_s`) schedules the next
    one, and why: `every_s` later, or earlier when a pair waits for samples after a change (see
    the module notes). `previous`: the last refit's decisions; a pair that gained no samples since
    then (the same change, no more samples) is not waited for early: none are coming. `drifts`:
    pairs whose newest samples sit off the ones before with no change dated (too recent to split
    off): looked at again once `regime.min_segment_samples` more have come in, so the change is
    dated then; once only (a pair that drifted at the last refit too is not looked at early again:
    a drift the change test keeps refusing would otherwise refit every few minutes)."""
    normal_s = started_s + every_s
    floor_s = max(EARLY_FLOOR_SCRAPES * step_s, EARLY_FLOOR_MIN_S)
    stalled = {(p.workload, p.node_class): p.regime for p in previous if p.regime is not None}
    best: tuple[float, GateDecision, float] | None = None
    for d in decisions:
        if d.samples_needed <= 0 or d.regime is None or d.regime.n_since <= 0:
            continue
        before = stalled.get((d.workload, d.node_class))
        if before is not None and abs(before.at_s - d.regime.at_s) <= step_s and before.n_since >= d.regime.n_since:
            continue
        rate = d.regime.n_since / (max(end_s - d.regime.at_s, 0.0) + step_s)   # one step per scrape counted
        due_s = end_s + (1.0 + EARLY_MARGIN) * d.samples_needed / rate + step_s
        if best is None or due_s < best[0]:
            best = (due_s, d, rate)
    soonest = _drift_refit(end_s, step_s, drifts or {}, previous_drifts or {}, regime)
    if best is None and soonest is None:
        return normal_s, _every(every_s)
    if best is None or (soonest is not None and soonest[0] < best[0]):
        assert soonest is not None
        expected_s, why = soonest
        due_s = min(max(expected_s, started_s + floor_s), normal_s)
        return (normal_s, _every(every_s)) if due_s >= normal_s else (due_s, why)
    expected_s, d, rate = best
    due_s = min(max(expected_s, started_s + floor_s), normal_s)
    if due_s >= normal_s:
        return normal_s, _every(every_s)
    held = f"; held to the floor of {floor_s:.0f} s after this refit" if expected_s < due_s else ""
    return due_s, (f"early: {d.workload} on {d.node_class} waits for {d.samples_needed} samples after a change "
                   f"({d.regime.describe()}; {d.regime.n_since} samples since, {rate:.3g} a second{held})")


def _drift_refit(end_s: float, step_s: float, drifts: Mapping[tuple[str, str], RecentDrift],
                 previous: Mapping[tuple[str, str], RecentDrift], regime: RegimeSettings) -> tuple[float, str] | None:
    """The earliest look again at a drifting pair: when `min_segment_samples` more of its samples
    should be in (at the rate of its newest ones, plus the early margin and a scrape step)."""
    best = None
    for (workload, node_class), drift in sorted(drifts.items()):
        if (workload, node_class) in previous:
            continue
        rate = drift.n_tail / (max(end_s - drift.from_s, 0.0) + step_s)
        due_s = end_s + (1.0 + EARLY_MARGIN) * regime.min_segment_samples / rate + step_s
        if best is None or due_s < best[0]:
            best = (due_s, f"early: {workload} on {node_class}: {drift.describe()}, a change too recent to date; "
                           f"looking again once {regime.min_segment_samples} more samples are in")
    return best


WRONG = frozenset({"implausible", "holdout_error"})   # a candidate refused for what it says, not for lack of data


def _refused_as_wrong(d: GateDecision) -> bool:
    """Worth an operator's eye (logged at INFO): a fit on enough samples refused as implausible or
    inaccurate. Too few samples, too narrow an FPS range, or no gain over the model in use are
    routine (DEBUG)."""
    categories = {r.category for r in d.reasons}
    return not d.accepted and bool(categories & WRONG) and "samples" not in categories


def _changed(new: PowerCurve, old: PowerCurve) -> bool:
    a = np.asarray(new.at(np.asarray(SPECPOWER_UTIL)), dtype=float)
    b = np.asarray(old.at(np.asarray(SPECPOWER_UTIL)), dtype=float)
    return bool(np.any(np.abs(a - b) > CURVE_CHANGE * np.maximum(np.abs(b), 1e-9)))


UNUSED_FIT_SOURCES = frozenset({PowerCurveSource.CATALOGUE.value, PowerCurveSource.SPECPOWER.value})


def judge_curves(fit: NodeCurveFit | None, own: dict[str, PowerCurve], elsewhere: dict[str, str],
                 file_name: str, sources: Mapping[str, str] | None = None) -> list[CurveDecision]:
    """One decision per node class the fit reported on (see the module notes); the file's other
    curves stay as they are. `sources`: where the live loop takes each class's curve from
    (`power_source.choose_power_curve`); a class on a catalogue or SPECpower curve would not use a
    Kepler fit, so none is written for it (it would only change the models' version)."""
    if fit is None:
        return []
    notes = {str(e["node_class"]): str(e.get("note") or "") for e in fit.classes}
    out = []
    for c in sorted(set(notes) | set(fit.curves)):
        current, new = own.get(c), fit.curves.get(c)
        kept_what = "keeps the curve in the file" if current is not None else "no curve in the file"
        if new is None:
            out.append(CurveDecision(c, False, current, f"{notes.get(c) or 'not fitted'}; {kept_what}"))
            continue
        problems = curve_problems(new)
        if problems:
            reason = f"implausible fit: {'; '.join(problems)}; {kept_what}"
        elif c in elsewhere:
            reason = f"{elsewhere[c]} holds this class's curve and the refitter rewrites only {file_name}"
        elif sources is not None and sources.get(c) in UNUSED_FIT_SOURCES:
            reason = (f"not written: the live loop uses the {sources[c]} curve for this class, which a Kepler fit "
                      "does not replace")
        elif current is not None and not _changed(new, current):
            reason = f"within {CURVE_CHANGE:.0%} of the curve in the file; kept"
        else:
            curve = replace(new, sleep_w=current.sleep_w) if current is not None else new
            verb = "replaced" if current is not None else "added"
            out.append(CurveDecision(c, True, curve, f"{verb}: {notes.get(c, '')}".rstrip(": "), new))
            continue
        out.append(CurveDecision(c, False, current, reason, new))
    return out
