"""The refitter against a real Prometheus loaded with series from a known truth: a pair whose cost
fell is refitted, gated and written where ModelDirectory loads it; an implausible fit keeps the
model in use and says why; Prometheus down is reported by the worker, not raised."""

import time

import numpy as np
import pytest

from wattwise.models import persistence
from wattwise.models.energy import WorkloadClassModel
from wattwise.models.model_gate import Verdict
from wattwise.models.replica_model import ReplicaPowerModel
from wattwise.telemetry.fit_cli import FitJob
from wattwise.telemetry.model_dir import ModelDirectory
from wattwise.telemetry.refit import Refitter
from tests.telemetry.synthetic import NAMESPACE, TRUTH, Faults, generate, true_power_w

pytestmark = pytest.mark.slow

HOURS = 6


def data_window():
    end_s = (time.time() - 3600) // 15 * 15  # promtool writes past blocks only
    return end_s - HOURS * 3600, HOURS * 3600


def models_in_use(tmp_path):
    """Yesterday's models: the truth before anything changed, as `wattwise fit` would have written it."""
    d = tmp_path / "models"
    d.mkdir()
    persistence.save(d / "energy-models.json", [
        WorkloadClassModel(f"{NAMESPACE}/{w}", c, ReplicaPowerModel.from_coefficients(c0, c1, c2), cap, prior=False,
                           n_samples=5000, source="kepler-0.10")
        for (w, c), (c0, c1, c2, cap) in TRUTH.items()])
    return d


def refitter(prom_url, models_dir, cluster, **kw):
    return Refitter(FitJob(prom_url, timeout_s=5.0, retries=0), models_dir, window_s=HOURS * 3600,
                    clock=lambda: cluster.end_s + 7.0, **kw)


def test_a_cost_that_fell_by_30_percent_is_refitted_and_loaded(prometheus_factory, tmp_path):
    c0, c1, c2, cap = TRUTH[("detector", "intel-amx-tdx")]
    cheaper = {("detector", "intel-amx-tdx"): (0.7 * c0, 0.7 * c1, 0.7 * c2, cap)}
    start_s, duration_s = data_window()
    text, cluster = generate("0.10", start_s, duration_s, Faults(spikes=2), truth=cheaper)
    prom = prometheus_factory(text)
    models_dir = models_in_use(tmp_path)
    watcher = ModelDirectory(models_dir, check_every_s=0.0)
    version = watcher.current().version

    report = refitter(prom.url, models_dir, cluster).run_once()
    assert report.ok, report.error
    assert (report.start_s, report.end_s) == (cluster.end_s - HOURS * 3600, cluster.end_s)
    key = ("video/detector", "intel-amx-tdx")
    decision = report.decision(*key)
    assert decision.verdict is Verdict.ACCEPTED, decision.summary()
    assert decision.candidate_mape < 0.05 and decision.incumbent_mape > 0.3
    assert report.written == str(models_dir / "energy-models.json")
    for d in report.decisions:                                   # nothing else changed: kept or refitted
        assert d.verdict in (Verdict.ACCEPTED, Verdict.KEPT_CURRENT), d.summary()

    loaded = watcher.current()
    assert loaded.version == version + 1 and loaded.error == ""
    model = loaded.by_pair[key]
    assert not model.prior and model.source == "kepler-0.10"
    grid = np.linspace(5.0, 32.0, 20)
    truth = true_power_w("detector", "intel-amx-tdx", grid, cheaper)
    assert np.max(np.abs([model.power.power_w(f) / t - 1 for f, t in zip(grid, truth)])) < 0.05
    assert set(loaded.by_pair) == {(f"{NAMESPACE}/{w}", c) for w, c in TRUTH}


def test_an_implausible_fit_keeps_the_current_model_and_says_why(prometheus_factory, tmp_path):
    falling = {("classifier", "amd-sev-snp"): (40.0, -0.3, 0.0, 60.0)}   # power falls as FPS rises
    start_s, duration_s = data_window()
    text, cluster = generate("0.9", start_s, duration_s, Faults(), truth=falling)
    prom = prometheus_factory(text)
    models_dir = models_in_use(tmp_path)
    before = (models_dir / "energy-models.json").read_text()

    report = refitter(prom.url, models_dir, cluster).run_once()
    assert report.ok, report.error
    decision = report.decision("video/classifier", "amd-sev-snp")
    assert decision.verdict is Verdict.KEPT_CURRENT
    assert decision.model.intercept_w == TRUTH[("classifier", "amd-sev-snp")][0]
    assert [r.category for r in decision.reasons] == ["implausible"]
    assert "power falls as FPS rises" in decision.reasons[0]
    assert decision.incumbent_mape > 0.3                          # the current model is off, yet it stays
    assert not report.accepted() and report.written == ""
    assert (models_dir / "energy-models.json").read_text() == before


def test_prometheus_down_is_reported_by_the_worker_not_raised(prometheus_factory, tmp_path):
    start_s, _ = data_window()
    text, cluster = generate("0.10", start_s, 1800, Faults())
    prom = prometheus_factory(text)
    prom.kill()
    models_dir = models_in_use(tmp_path)
    before = (models_dir / "energy-models.json").read_text()
    worker = refitter(prom.url, models_dir, cluster, every_s=3600.0, poll_s=0.01)
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while worker.last_report() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        report = worker.last_report()
        assert report is not None and not report.ok
        assert report.retryable and prom.url in report.error
        assert report.next_due_s == cluster.end_s + 7.0 + 60.0   # Prometheus may come back: tried again soon
        assert worker._thread.is_alive()
    finally:
        worker.stop()
    assert (models_dir / "energy-models.json").read_text() == before
