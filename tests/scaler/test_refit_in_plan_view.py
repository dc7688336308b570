"""The plan view says what the last background refit did with each pair (replaced, or kept and
why), even when it kept every model and so no re-plan followed."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from tests.scaler.helpers import SettableDemand, ref, snapshot, start_live, stub_for
from tests.scaler.test_capacity_from_drops import CLS, KEY
from tests.telemetry.test_fitting import pair_samples
from tests.telemetry.test_refit import JOB, Clock
from wattwise.models import persistence
from wattwise.plan_report import plan_report
from wattwise.scaler.app import build_scaler, settings_from_snapshot
from wattwise.scaler.metadata import parse_metadata
from wattwise.scaler.sources import ScenarioCarbon, ScenarioInventory, catalogue, demo_metadata, recorded_demand
from wattwise.telemetry.fit_cli import FitRun
from wattwise.telemetry.fitting import fit_energy_models
from wattwise.telemetry.learned import LearnedOverlay
from wattwise.telemetry.model_dir import ModelDirectory
from wattwise.telemetry.refit import Refitter

T0 = 1_700_000_000.0


def report(verdict: str, reason: str):
    pair = {"workload": "shop/cams", "node_class": "spr-amx-tdx", "verdict": verdict, "reasons": [reason],
            "categories": ["quality"], "candidate_holdout_mape": 0.2, "current_holdout_mape": 0.03}
    doc = {"ok": True, "error": "", "finished_s": T0, "window": {"start_s": T0 - 3600, "end_s": T0},
           "next_due_s": T0 + 600, "written": "", "not_written": "", "pairs": [pair], "node_power": []}
    return SimpleNamespace(as_dict=lambda: doc)


def test_a_refit_that_kept_every_model_shows_in_the_next_refresh():
    scaler = start_live(SettableDemand({"sum(s)": 10.0}), clock=lambda: T0, start_refresher=False, interval_s=15.0)
    try:
        channel, stub = stub_for(scaler.grpc_port)
        stub.GetMetricSpec(ref("cams", "shop", workload="cams", query="sum(s)"), timeout=5)
        channel.close()
        refresher = scaler.scaler.refresher
        refresher.refresh_once(force=True)
        assert plan_report(refresher.state().default_view)["inputs"]["refit"] is None    # no refits here
        latest = [report("kept_current", "hold-out error 20% above 10%")]
        refresher.refit_report = lambda: latest[0]
        refresher.refresh_once()                                  # nothing to re-plan: the view still says it
        doc = plan_report(refresher.state().default_view)
        assert doc["inputs"]["refit"]["ok"] is True and doc["inputs"]["refit"]["next_due_s"] == T0 + 600
        entry = next(m for m in doc["inputs"]["models"]
                     if (m["workload"], m["node_class"]) == ("shop/cams", "spr-amx-tdx"))
        assert entry["last_refit"] == "kept_current"
        assert entry["last_refit_reasons"] == ["hold-out error 20% above 10%"]
    finally:
        scaler.stop(1.0)


def test_a_model_accepted_where_models_cannot_be_written_is_planned_with_and_says_so(tmp_path, monkeypatch):
    """A read-only --models (the shipped ConfigMap): GET /plan must not show "accepted" beside the
    prior. The accepted model is planned with, from memory, and its source says so."""
    def read_only(path, *args, **kwargs):
        raise OSError(30, "Read-only file system")
    monkeypatch.setattr(persistence, "save", read_only)
    models = LearnedOverlay(ModelDirectory(tmp_path, check_every_s=0.0))
    samples = pair_samples(KEY, CLS, 12, 1.6, 0.01, 32)
    refitter = Refitter(JOB, tmp_path, clock=Clock(), learned=models,
                        runner=lambda start_s, end_s: FitRun(fit_energy_models(samples), {}))
    snap = snapshot()
    scaler = build_scaler(inventory=ScenarioInventory(snap), demand=recorded_demand(snap), carbon=ScenarioCarbon(snap),
                          catalogue_by_key=catalogue(snap), settings=settings_from_snapshot(snap, 15.0),
                          clock=lambda: T0, models=models, registry_ttl_s=math.inf)
    for w in snap.workloads:
        scaler.registry.touch(parse_metadata(w.name, w.namespace, demo_metadata(w)))
    scaler.refresher.refit_report = refitter.last_report

    def entry():
        doc = plan_report(scaler.refresher.refresh_once(force=True).default_view)
        return next(m for m in doc["inputs"]["models"] if (m["workload"], m["node_class"]) == (KEY, CLS))
    assert entry()["kind"] == "prior"
    assert refitter.run_once().decision(KEY, CLS).accepted
    e = entry()
    assert e["last_refit"] == "accepted" and e["kind"] == "fitted"
    assert e["source"] == "measured (learned, not persisted)" and e["capacity_fps"] == pytest.approx(32.0, rel=0.02)
