"""The refitter with an injected clock and runner: schedule, gate per pair, atomic writes that
ModelDirectory reads, and failures reported (never raised) and retried a period later."""

import threading
import time

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


def test_schedule_window_and_failures_reported_then_retried_a_period_later(tmp_path):
    clock = Clock(1_000_007.0)
    runner = Runner(error=PrometheusUnavailable("Prometheus at http://127.0.0.1:9 is unreachable"))
    refitter = Refitter(JOB, tmp_path, every_s=3600.0, window_s=7200.0, clock=clock, runner=runner)
    assert refitter.last_report() is None and refitter.due()
    report = refitter.tick()
    end_s = 1_000_005.0                                              # rounded down to the 15 s step
    assert runner.calls == [(end_s - 7200.0, end_s)]
    assert not report.ok and report.retryable and "unreachable" in report.error
    assert report.next_due_s == 1_000_007.0 + 3600.0 and report.decisions == ()
    clock.t += 3599.0
    assert refitter.tick() is None and len(runner.calls) == 1
    runner.error, runner.frames = None, cheaper_a_and_falling_b()
    clock.t += 1.0
    assert refitter.tick().ok and len(runner.calls) == 2 and refitter.last_report().ok


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
