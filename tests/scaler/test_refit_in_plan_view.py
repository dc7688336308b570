"""The plan view says what the last background refit did with each pair (replaced, or kept and
why), even when it kept every model and so no re-plan followed."""

from __future__ import annotations

from types import SimpleNamespace

from tests.scaler.helpers import SettableDemand, ref, start_live, stub_for
from wattwise.plan_report import plan_report

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
