"""The refitter with an injected clock and runner: schedule, gate per pair, atomic writes that
ModelDirectory reads, and failures reported (never raised) and retried: soon when
retrying may help, a period later when not."""

import json
import math
import os
import threading
import time

import numpy as np
import pandas as pd
import pytest

from wattwise.models import persistence
from wattwise.models.energy import WorkloadClassModel
from wattwise.models.errors import InvalidInputError
from wattwise.models.model_gate import Verdict
from wattwise.models.power_curve import PowerCurve
from wattwise.models.replica_model import ReplicaPowerModel
from wattwise.telemetry.fit_cli import FitJob, FitRun
from wattwise.telemetry.fitting import fit_energy_models
from wattwise.telemetry.learned import LearnedOverlay
from wattwise.telemetry.model_dir import ModelDirectory
from wattwise.telemetry.prometheus.errors import PrometheusUnavailable
from wattwise.telemetry.refit import Refitter
from tests.telemetry.test_fitting import pair_samples

A, B = ("ns/a", "x"), ("ns/b", "y")
JOB = FitJob("http://127.0.0.1:9", step_s=15.0)


class Clock:
    def __init__(self, t=1_000_000.0):
        self.t = t

    def __call__(self):
        return self.t


def model(pair, c0, c1, c2=0.0, capacity=32.0):
    return WorkloadClassModel(*pair, ReplicaPowerModel.from_coefficients(c0, c1, c2), capacity, prior=False,
                              n_samples=1000, source="kepler-0.10")


class Runner:
    """Fits in-memory samples as `wattwise fit` would; records the ranges asked for."""

    def __init__(self, frames=None, error=None):
        self.frames, self.error, self.calls = frames, error, []

    def __call__(self, start_s, end_s):
        self.calls.append((start_s, end_s))
        if self.error is not None:
            raise self.error
        return FitRun(fit_energy_models(pd.concat(self.frames, ignore_index=True)), {})


def cheaper_a_and_falling_b():
    return [pair_samples(*A, 12 * 0.7, 1.6 * 0.7, 0.01 * 0.7, 32),        # a's cost fell by 30%
            pair_samples(*B, 40, -0.3, 0.0, 60, seed=1)]                  # b's power falls with FPS


def test_accepts_the_cheaper_pair_keeps_the_implausible_one_and_modeldirectory_loads_it(tmp_path):
    curve = PowerCurve.linear(100.0, 400.0)
    persistence.save(tmp_path / "energy-models.json", [model(A, 12, 1.6, 0.01), model(B, 8, 0.8, 0.004, 60)],
                     {"x": curve})
    watcher = ModelDirectory(tmp_path, check_every_s=0.0)
    before = watcher.current()
    refitter = Refitter(JOB, tmp_path, clock=Clock(), runner=Runner(cheaper_a_and_falling_b()))
    report = refitter.run_once()
    assert report.ok and report.written == str(tmp_path / "energy-models.json") and report is refitter.last_report()
    a, b = report.decision(*A), report.decision(*B)
    assert a.verdict is Verdict.ACCEPTED and a.incumbent_mape > 0.3
    assert b.verdict is Verdict.KEPT_CURRENT and "power falls as FPS rises" in b.reasons[0]
    assert [d.workload for d in report.accepted()] == ["ns/a"]

    after = watcher.current()
    assert after.version == before.version + 1 and after.error == ""
    assert after.by_pair[A].power.power_w(20) == pytest.approx(0.7 * (12 + 32 + 4), rel=0.02)
    assert after.by_pair[B].intercept_w == 8.0                       # the current model, untouched
    assert after.node_power == {"x": curve}                          # the file's curves are kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["energy-models.json"]   # no temporary left
    assert report.as_dict()["pairs"][0]["verdict"] == "accepted"


def test_a_fit_refused_as_implausible_is_logged_where_operators_look(tmp_path, caplog):
    persistence.save(tmp_path / "energy-models.json", [model(A, 12, 1.6, 0.01), model(B, 8, 0.8, 0.004, 60)])
    refitter = Refitter(JOB, tmp_path, clock=Clock(), runner=Runner(cheaper_a_and_falling_b()))
    with caplog.at_level("INFO", logger="wattwise.telemetry.refit"):
        refitter.run_once()
    infos = [r.getMessage() for r in caplog.records if r.levelname == "INFO" and r.name == "wattwise.telemetry.refit"]
    assert any("ns/b on y: kept-current: implausible: power falls as FPS rises" in m for m in infos), infos
    assert any("ns/a on x: accepted" in m for m in infos)
    caplog.clear()
    with caplog.at_level("INFO", logger="wattwise.telemetry.refit"):
        Refitter(JOB, tmp_path, clock=Clock(), runner=Runner([pair_samples(*A, 12 * 0.7, 1.6 * 0.7, 0.01 * 0.7, 32)
                                                              .head(20)])).run_once()
    assert not any("kept" in r.getMessage() for r in caplog.records
                   if r.levelname == "INFO" and r.name == "wattwise.telemetry.refit")   # not fitted: routine


def test_a_folder_wattwise_fit_wrote_is_refitted_without_reading_its_report(tmp_path):
    """`--models` at a `wattwise fit --out` folder: fit-report.json beside the models is not a model
    file (ModelDirectory skips it; so must the refitter, or every refit fails, not retryable)."""
    fit = fit_energy_models(pair_samples(*A, 12, 1.6, 0.01, 32))
    persistence.save(tmp_path / "energy-models.json", fit.models)
    (tmp_path / "fit-report.json").write_text(json.dumps(fit.report(), indent=2) + "\n")
    (tmp_path / "fit-table.txt").write_text("table\n")
    assert ModelDirectory(tmp_path).current().by_pair.keys() == {A}
    report = Refitter(JOB, tmp_path, clock=Clock(), runner=Runner(cheaper_a_and_falling_b())).run_once()
    assert report.ok, report.error
    assert report.decision(*A).accepted and report.written == str(tmp_path / "energy-models.json")


def test_the_new_file_is_on_disk_before_it_replaces_the_old_one(tmp_path, monkeypatch):
    """fsync of the written file before os.replace, then of the directory: after a crash the
    directory holds the old models or the new, never a file the rename made visible but empty."""
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))),
                                                 real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(("replace", str(a))), real_replace(a, b))[1])
    report = Refitter(JOB, tmp_path, clock=Clock(), runner=Runner(cheaper_a_and_falling_b())).run_once()
    assert report.written
    (kind0, tmp), (kind1, replaced), (kind2, synced_dir) = events
    assert (kind0, kind1, kind2) == ("fsync", "replace", "fsync")
    assert tmp == replaced and os.path.basename(tmp).startswith(".energy-models.json.")
    assert synced_dir == str(tmp_path)


def test_nothing_accepted_writes_nothing(tmp_path):
    persistence.save(tmp_path / "energy-models.json", [model(B, 8, 0.8, 0.004, 60)])
    mtime = (tmp_path / "energy-models.json").stat().st_mtime_ns
    report = Refitter(JOB, tmp_path, clock=Clock(), runner=Runner([pair_samples(*B, 40, -0.3, 0.0, 60)])).run_once()
    assert report.ok and report.written == "" and not report.accepted()
    assert (tmp_path / "energy-models.json").stat().st_mtime_ns == mtime


def test_a_new_pair_without_a_model_is_written_and_an_unfitted_one_stays_on_its_prior(tmp_path):
    frames = [pair_samples(*A, 12, 1.6, 0.01, 32), pair_samples("ns/few", "x", 12, 1.6, 0.0, 32, n=10)]
    report = Refitter(JOB, tmp_path, clock=Clock(), runner=Runner(frames)).run_once()
    assert report.decision(*A).accepted
    few = report.decision("ns/few", "x")
    assert few.verdict is Verdict.KEPT_PRIOR and few.reasons[0].startswith("not fitted: ")
    models, _ = persistence.load(tmp_path / "energy-models.json")
    assert [(m.workload, m.node_class) for m in models] == [A]


def test_a_pair_held_by_another_file_is_not_rewritten(tmp_path):
    persistence.save(tmp_path / "mine.json", [model(A, 12, 1.6, 0.01)])
    report = Refitter(JOB, tmp_path, clock=Clock(), runner=Runner(cheaper_a_and_falling_b())).run_once()
    a = report.decision(*A)
    assert a.verdict is Verdict.KEPT_CURRENT and a.reasons[-1].category == "held_elsewhere"
    assert "mine.json holds this pair" in a.reasons[-1]
    assert not (tmp_path / "energy-models.json").exists()
    assert ModelDirectory(tmp_path).current().error == ""


def test_an_unwritable_directory_keeps_the_decisions_in_the_report(tmp_path, monkeypatch):
    def read_only(path, *args, **kwargs):
        raise OSError(30, "Read-only file system")
    monkeypatch.setattr(persistence, "save", read_only)
    report = Refitter(JOB, tmp_path, clock=Clock(), runner=Runner(cheaper_a_and_falling_b())).run_once()
    assert report.ok and report.written == "" and "Read-only file system" in report.not_written
    assert report.decision(*A).accepted and report.decision(*A).model is not None
    assert list(tmp_path.iterdir()) == []                          # the temporary file is gone too


def test_an_unwritable_directory_plans_with_what_was_accepted_from_memory(tmp_path, monkeypatch):
    """A read-only --models (a ConfigMap): the accepted model is laid over the directory the live
    loop reads, said to be "learned, not persisted", judged against by the next refit, and gives
    way when the directory's own entry for the pair changes."""
    persistence.save(tmp_path / "energy-models.json", [model(A, 12, 1.6, 0.01), model(B, 8, 0.8, 0.004, 60)])
    live = LearnedOverlay(ModelDirectory(tmp_path, check_every_s=0.0))
    before = live.current()
    real_save = persistence.save

    def read_only(path, *args, **kwargs):
        raise OSError(30, "Read-only file system")
    monkeypatch.setattr(persistence, "save", read_only)
    refitter = Refitter(JOB, tmp_path, clock=Clock(), runner=Runner(cheaper_a_and_falling_b()), learned=live)
    report = refitter.run_once()
    assert report.decision(*A).accepted and report.written == ""
    assert "planned with from memory (learned, not persisted)" in report.not_written
    now = live.current()
    assert now.version > before.version
    assert now.by_pair[A].power.power_w(20) == pytest.approx(0.7 * (12 + 32 + 4), rel=0.02)
    assert now.by_pair[A].source == "measured (learned, not persisted)"
    assert now.by_pair[B] == before.by_pair[B]
    assert live.current() is now                                  # unchanged: same set, same version

    again = refitter.run_once()                                   # the learned model is the one in use
    assert again.decision(*A).verdict is Verdict.KEPT_CURRENT and live.current().version == now.version

    monkeypatch.setattr(persistence, "save", real_save)
    persistence.save(tmp_path / "energy-models.json", [model(A, 20, 1.0), model(B, 8, 0.8, 0.004, 60)])
    after = live.current()                                        # someone wrote a newer A: the file wins
    assert after.by_pair[A].intercept_w == 20.0 and after.by_pair[A].source == "kepler-0.10"


def test_schedule_window_and_a_retryable_failure_retried_soon_then_less_often(tmp_path):
    """Prometheus down (retryable): tried again after 60 s, then 120 s, 240 s, ... never later than
    the period; the first success resets the backoff and the next refit is a period later."""
    clock = Clock(1_000_007.0)
    runner = Runner(error=PrometheusUnavailable("Prometheus at http://127.0.0.1:9 is unreachable"))
    refitter = Refitter(JOB, tmp_path, every_s=600.0, window_s=7200.0, clock=clock, runner=runner)
    assert refitter.last_report() is None and refitter.due()
    report = refitter.tick()
    end_s = 1_000_005.0                                              # rounded down to the 15 s step
    assert runner.calls == [(end_s - 7200.0, end_s)]
    assert not report.ok and report.retryable and "unreachable" in report.error and report.decisions == ()
    waits = []
    for _ in range(5):
        waits.append(report.next_due_s - clock.t)
        clock.t = report.next_due_s - 1.0
        assert refitter.tick() is None
        clock.t += 1.0
        report = refitter.tick()
        assert not report.ok
    assert waits == [60.0, 120.0, 240.0, 480.0, 600.0] and len(runner.calls) == 6
    assert report.next_due_reason == "every 600 s"
    assert refitter.last_report().next_due_s - clock.t == 600.0
    runner.error, runner.frames = None, cheaper_a_and_falling_b()
    clock.t = refitter.last_report().next_due_s
    report = refitter.tick()
    assert report.ok and len(runner.calls) == 7 and report.next_due_s - clock.t == 600.0
    runner.error = PrometheusUnavailable("unreachable again")
    clock.t = report.next_due_s
    assert refitter.tick().next_due_reason == "retry 1 after a failure that retrying may help: in 60 s"


def test_a_failure_retrying_will_not_help_is_tried_a_period_later(tmp_path):
    clock = Clock()
    refitter = Refitter(JOB, tmp_path, every_s=600.0, clock=clock, runner=Runner(error=ValueError("a bug in the fit")))
    report = refitter.tick()
    assert not report.retryable and report.next_due_s - clock.t == 600.0 and report.next_due_reason == "every 600 s"


def test_a_bad_model_file_fails_the_run_without_fetching(tmp_path):
    (tmp_path / "energy-models.json").write_text("{ not json")
    runner = Runner(cheaper_a_and_falling_b())
    report = Refitter(JOB, tmp_path, clock=Clock(), runner=runner).run_once()
    assert not report.ok and not report.retryable and "not JSON" in report.error and runner.calls == []
    assert (tmp_path / "energy-models.json").read_text() == "{ not json"


def test_the_worker_thread_never_dies_and_answers_never_wait(tmp_path):
    started, release = threading.Event(), threading.Event()

    def slow_then_broken(start_s, end_s):
        started.set()
        release.wait(5)
        raise RuntimeError("a bug in the fit")

    refitter = Refitter(JOB, tmp_path, every_s=3600.0, clock=Clock(), runner=slow_then_broken, poll_s=0.01)
    refitter.start()
    try:
        assert started.wait(5)
        t0 = time.monotonic()
        assert refitter.last_report() is None                         # read while the refit runs
        assert time.monotonic() - t0 < 0.1
        release.set()
        deadline = time.monotonic() + 5
        while refitter.last_report() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        report = refitter.last_report()
        assert report.error == "a bug in the fit" and not report.retryable
        assert refitter._thread.is_alive()
    finally:
        refitter.stop()
    assert not refitter._thread.is_alive()


@pytest.mark.parametrize("kwargs, field", [({"every_s": 0}, "every_s"), ({"window_s": float("nan")}, "window_s"),
                                          ({"file_name": ".hidden.json"}, "file_name")])
def test_bad_settings_are_clear_errors(tmp_path, kwargs, field):
    with pytest.raises(InvalidInputError, match=field):
        Refitter(JOB, tmp_path, **kwargs)
    with pytest.raises(InvalidInputError, match="is not a directory"):
        Refitter(JOB, tmp_path / "missing")


def test_a_period_shorter_than_the_poll_is_kept(tmp_path):
    """`--refit-every 10s` refits every 10 s, not every `poll_s` (30 s): the worker sleeps until due."""
    runner = Runner(error=PrometheusUnavailable("Prometheus at http://127.0.0.1:9 is unreachable"))
    refitter = Refitter(JOB, tmp_path, every_s=0.2, window_s=7200.0, runner=runner, poll_s=30.0)
    refitter.start()
    try:
        deadline = time.monotonic() + 10
        while len(runner.calls) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        refitter.stop()
    assert len(runner.calls) >= 4          # at 0 s, 0.2 s, 0.4 s, 0.6 s; with a 30 s poll only the first


def test_the_worker_checks_at_least_every_poll(tmp_path):
    clock = Clock()
    refitter = Refitter(JOB, tmp_path, every_s=3600.0, clock=clock, runner=Runner(), poll_s=7.0)
    assert refitter._wait_s() == 0.05                  # due now: at once (the shortest sleep)
    refitter._next_due_s = clock.t + 3.0
    assert refitter._wait_s() == 3.0                   # due in 3 s: wakes then
    refitter._next_due_s = clock.t + 3600.0
    assert refitter._wait_s() == 7.0                   # due in an hour: checks every poll


def test_a_cost_change_shortly_before_the_refit_keeps_the_model_and_says_it_waits(tmp_path):
    """The change is found and dated, but its 60 samples since are fewer than the gate's 200: the
    model in use stays, and the decision says why. Once 200 have come in, their fit replaces it."""
    from tests.telemetry.test_fitting import upgraded_at
    persistence.save(tmp_path / "energy-models.json", [model(A, 12, 1.6, 0.01)])
    report = Refitter(JOB, tmp_path, clock=Clock(), runner=Runner([upgraded_at(370)])).run_once()
    a = report.decision(*A)
    assert a.verdict is Verdict.KEPT_CURRENT and a.model.intercept_w == 12.0 and report.written == ""
    assert a.regime is not None and a.regime.at_s == 15.0 * 370
    assert a.reasons[0].startswith("regime change at 1970-01-01T01:32:30Z (power -30% at the same FPS), "
                                   "60 samples since: waiting for more (60 samples (needs 200)")
    assert report.as_dict()["pairs"][0]["regime_change_s"] == 15.0 * 370

    report = Refitter(JOB, tmp_path, clock=Clock(), runner=Runner([upgraded_at(290)])).run_once()
    a = report.decision(*A)
    assert a.accepted and a.regime.at_s == 15.0 * 290 and "220 samples since the regime change" in a.reasons[0]
    assert a.model.power.power_w(20) == pytest.approx(0.7 * (12 + 32 + 4), rel=0.02)
    assert a.incumbent_mape > 0.3            # the model in use, on the same post-change hold-out


T0 = 15.0 * 113_333_333              # 2023-11-14T22:13:15Z, on the 15 s step
HOUR = 3600.0


class Trace:
    """`pods` pods of ns/a on x scraped every 15 s from `begin_s`: 12 + 1.6 fps + 0.01 fps^2 W per
    replica, times `factor` from `change_s` on, and no samples after `stop_s`. A refit reads the
    scrapes within its window, as a Prometheus range query returns them."""

    def __init__(self, begin_s, change_s=math.inf, factor=0.7, stop_s=math.inf, pods=5, hours=30):
        rng = np.random.default_rng(7)
        t = begin_s + 15.0 * np.arange(int(hours * HOUR / 15.0))
        t = t[t <= stop_s]
        frames = []
        for k in range(pods):
            offered = rng.uniform(3.2, 38.4, t.size)
            fps = np.minimum(offered, 32.0)
            power = (12 + 1.6 * fps + 0.01 * fps**2) * (1 + rng.normal(0, 0.01, t.size))
            power = np.where(t >= change_s, factor * power, power)
            frames.append(pd.DataFrame({"t_s": t, "workload": A[0], "pod": f"a-{k}", "node": f"x-n{k}",
                                        "node_class": A[1], "power_w": power, "fps": fps, "drop_fps": offered - fps}))
        self.samples, self.calls = pd.concat(frames, ignore_index=True), []

    def __call__(self, start_s, end_s):
        self.calls.append((start_s, end_s))
        df = self.samples[(self.samples["t_s"] >= start_s) & (self.samples["t_s"] <= end_s)]
        return FitRun(fit_energy_models(df.reset_index(drop=True)), {})


def run_worker(refitter, clock, until_s, tick_s=15.0):
    """The worker's loop on the injected clock: a check every `tick_s` until `until_s`; the refits made."""
    reports = []
    while clock.t < until_s:
        clock.t += tick_s
        report = refitter.tick()
        if report is not None:
            reports.append(report)
    return reports


def test_a_cost_change_just_before_a_refit_is_adopted_by_an_early_refit_within_the_period(tmp_path):
    """Default cadence (every 4 h over 24 h, 15 s step, 5 pods); a's cost falls by 30% a minute
    before the refit at 4 h. That refit keeps the model (25 samples since, needs 200) and comes back
    when 200 are due, about 10 minutes later, not 4 h; that early refit adopts the new cost."""
    persistence.save(tmp_path / "energy-models.json", [model(A, 12, 1.6, 0.01)])
    t1 = T0 + 4 * HOUR
    clock, trace = Clock(T0), Trace(T0 - 24 * HOUR, change_s=t1 - 60.0)
    refitter = Refitter(JOB, tmp_path, clock=clock, runner=trace)
    first = refitter.tick()
    assert first.decision(*A).verdict is Verdict.KEPT_CURRENT and first.decision(*A).regime is None
    assert first.next_due_s == T0 + 4 * HOUR and first.next_due_reason == "every 14400 s"

    waited, early = run_worker(refitter, clock, t1 + 4 * HOUR - 15.0)[:2]
    assert waited.started_s == t1
    a = waited.decision(*A)
    assert a.verdict is Verdict.KEPT_CURRENT and a.model.intercept_w == 12.0 and waited.written == ""
    assert "samples since: waiting for more" in a.reasons[0] and a.samples_needed > 0
    assert 8 * 60 <= waited.next_due_s - t1 <= 11 * 60                   # about 10 minutes, not 4 h
    assert waited.next_due_reason.startswith(f"early: ns/a on x waits for {a.samples_needed} samples after a change "
                                             "(regime change at ")
    assert waited.as_dict()["next_due_s"] == waited.next_due_s
    assert waited.as_dict()["next_due_reason"] == waited.next_due_reason

    assert waited.next_due_s <= early.started_s < waited.next_due_s + 15.0   # the worker's next check
    a = early.decision(*A)
    assert a.accepted and a.regime is not None and a.samples_needed == 0
    assert a.model.power.power_w(20) == pytest.approx(0.7 * (12 + 32 + 4), rel=0.02)
    models, _ = persistence.load(tmp_path / "energy-models.json")
    assert models[0].power.power_w(20) == pytest.approx(0.7 * (12 + 32 + 4), rel=0.02)   # what is served now
    assert early.started_s - (t1 - 60.0) < refitter.every_s              # within one period of the change
    assert early.next_due_s == early.started_s + 4 * HOUR and early.next_due_reason == "every 14400 s"


def test_a_cost_change_too_recent_to_date_at_a_refit_is_looked_at_again_soon(tmp_path):
    """a's cost falls by 30% 20 s before the refit at 4 h: two scrapes of 5 pods, too few for the
    change test to date. The newest samples sit off, so the refit looks again once 30 more are in
    (about 1.5 minutes, not 4 h); that one dates the change and waits for the gate's 200 samples;
    the new cost is adopted well within the period. Only once per drift: no refit every few minutes."""
    persistence.save(tmp_path / "energy-models.json", [model(A, 12, 1.6, 0.01)])
    t1 = T0 + 4 * HOUR
    clock, trace = Clock(T0), Trace(T0 - 24 * HOUR, change_s=t1 - 20.0)
    refitter = Refitter(JOB, tmp_path, clock=clock, runner=trace)
    assert refitter.tick().next_due_reason == "every 14400 s"
    reports = run_worker(refitter, clock, t1 + 4 * HOUR - 15.0)
    at_t1 = reports[0]
    assert at_t1.started_s == t1 and at_t1.decision(*A).regime is None and at_t1.decision(*A).model.intercept_w == 12.0
    assert at_t1.next_due_reason.startswith("early: ns/a on x: its newest 10 samples sit -30% off the ones before, a "
                                            "change too recent to date; looking again once 30 more samples are in")
    assert 60.0 <= at_t1.next_due_s - t1 <= 180.0 and (*A,) in at_t1.drifts
    dated = reports[1]
    assert dated.decision(*A).regime is not None and dated.decision(*A).samples_needed > 0 and not dated.drifts
    adopted = next(r for r in reports if r.decision(*A).accepted)
    assert adopted.started_s - t1 < HOUR
    assert adopted.decision(*A).model.power.power_w(20) == pytest.approx(0.7 * (12 + 32 + 4), rel=0.02)
    assert adopted.next_due_reason == "every 14400 s" and reports[-1] is adopted   # then the period


def test_a_drift_seen_at_the_last_refit_too_is_not_looked_at_early_again():
    from wattwise.models.regime import RecentDrift
    from wattwise.telemetry.refit import next_refit

    drift = {A: RecentDrift(T0 - 15.0, -0.3, 10)}          # 10 samples in 30 s: 30 more in 90 s
    due_s, why = next_refit(T0, T0, 4 * HOUR, 15.0, [], drifts=drift)
    assert due_s == pytest.approx(T0 + 1.1 * 90.0 + 15.0) and why.startswith("early: ns/a on x: its newest 10")
    assert next_refit(T0, T0, 4 * HOUR, 15.0, [], drifts=drift, previous_drifts=drift) == (T0 + 4 * HOUR,
                                                                                            "every 14400 s")
    assert next_refit(T0, T0, 60.0, 15.0, [], drifts=drift) == (T0 + 60.0, "every 60 s")   # never after the period


def test_the_plan_view_shows_an_early_refit_and_why(tmp_path):
    from dataclasses import replace as replace_view
    from wattwise.models.scenario import load_scenario
    from wattwise.plan_report import plan_report
    from wattwise.runtime import StaticPlanSource

    persistence.save(tmp_path / "energy-models.json", [model(A, 12, 1.6, 0.01)])
    clock = Clock(T0)
    report = Refitter(JOB, tmp_path, clock=clock, runner=Trace(T0 - 2 * HOUR, change_s=T0 - 60.0)).run_once()
    view = StaticPlanSource(load_scenario("scenarios/metro-retail.yaml").snapshot).current()
    doc = plan_report(replace_view(view, inputs={"refit": report.as_dict()}))["inputs"]["refit"]
    assert doc["next_due_s"] == report.next_due_s < T0 + 3600
    assert doc["next_due_reason"].startswith("early: ns/a on x waits for ")


def test_a_waiting_pair_whose_samples_stop_never_refits_more_often_than_the_floor(tmp_path):
    """The pods stop 39 scrapes after the change: 195 samples since, 5 short of the gate's 200,
    and none to come. The estimate (5 samples at the rate since the change) is seconds, so the
    floor, 10 scrapes (150 s), is what spaces the refits while samples come in; once a refit finds
    no more samples than the last one, the next is a period later."""
    persistence.save(tmp_path / "energy-models.json", [model(A, 12, 1.6, 0.01)])
    change_s = T0 - 60.0
    stop_s = change_s + 38 * 15.0
    clock = Clock(T0)
    trace = Trace(T0 - 2 * HOUR, change_s=change_s, stop_s=stop_s)
    refitter = Refitter(JOB, tmp_path, clock=clock, runner=trace)
    reports = [refitter.tick()] + run_worker(refitter, clock, T0 + 9 * HOUR)
    gaps = np.diff([r.started_s for r in reports])
    assert gaps.min() >= 150.0 and gaps.max() <= 4 * HOUR
    assert all(r.decision(*A).verdict is Verdict.KEPT_CURRENT and r.decision(*A).samples_needed > 0
               for r in reports)
    floored = [r for r in reports if "held to the floor of 150 s" in r.next_due_reason]
    assert floored and all(r.next_due_s == r.started_s + 150.0 for r in floored)
    assert reports[-1].decision(*A).samples_needed == 5
    # at most one refit after the samples stopped finds them unchanged; from then on, every period
    stalled = [i for i in range(1, len(reports))
               if reports[i].decision(*A).regime.n_since == reports[i - 1].decision(*A).regime.n_since]
    assert stalled
    first = stalled[0]
    assert all(r.next_due_reason == "every 14400 s" and r.next_due_s == r.started_s + 4 * HOUR
               for r in reports[first:])
    assert len(reports) <= first + 3


def test_without_a_change_the_next_refit_is_a_period_later(tmp_path):
    persistence.save(tmp_path / "energy-models.json", [model(A, 12, 1.6, 0.01)])
    clock = Clock(T0)
    refitter = Refitter(JOB, tmp_path, clock=clock, runner=Trace(T0 - 24 * HOUR, hours=34))
    reports = [refitter.tick()] + run_worker(refitter, clock, T0 + 8 * HOUR, tick_s=60.0)
    assert [r.started_s for r in reports] == [T0, T0 + 4 * HOUR, T0 + 8 * HOUR]
    for r in reports:
        assert r.decision(*A).regime is None and r.decision(*A).samples_needed == 0
        assert r.next_due_s == r.started_s + 4 * HOUR and r.next_due_reason == "every 14400 s"


def test_the_earliest_waiting_pair_sets_the_early_refit_within_the_floor_and_the_period():
    from wattwise.models.model_gate import GateDecision
    from wattwise.models.regime import RegimeChange
    from wattwise.telemetry.refit import next_refit

    def waiting(workload, n_since, needed, since_s):
        change = RegimeChange(T0 - since_s, -0.3, 1e3, 1000, n_since)
        return GateDecision(workload, "x", Verdict.KEPT_CURRENT, None, (), regime=change, samples_needed=needed)

    slow, fast = waiting("ns/slow", 30, 170, 285.0), waiting("ns/fast", 100, 100, 285.0)   # 0.1 and 1/3 a second
    due_s, why = next_refit(T0, T0, 4 * HOUR, 15.0, [slow, fast])
    assert due_s == pytest.approx(T0 + 1.1 * 300 + 15) and why.startswith("early: ns/fast on x waits for 100 samples")
    due_s, why = next_refit(T0, T0, 4 * HOUR, 15.0, [waiting("ns/a", 100, 2, 285.0)])
    assert due_s == T0 + 150.0 and "held to the floor of 150 s" in why
    assert next_refit(T0, T0, 4 * HOUR, 1.0, [waiting("ns/a", 100, 2, 285.0)])[0] == T0 + 60.0   # a 1 s step
    assert next_refit(T0, T0, 100.0, 15.0, [fast]) == (T0 + 100.0, "every 100 s")   # never after the period
    assert next_refit(T0, T0, 4 * HOUR, 15.0, [waiting("ns/a", 30, 170, 4 * HOUR)])[1] == "every 14400 s"
