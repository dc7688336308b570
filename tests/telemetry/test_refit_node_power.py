"""The refitter and node power curves, with an injected runner: a plausible new curve replaces the
file's (standby power carried over) even when no pair is accepted; an implausible, unfitted,
unchanged or elsewhere-held one leaves the file as it was."""

import pandas as pd
import pytest

from wattwise.models import persistence
from wattwise.models.power_curve import PowerCurve
from wattwise.telemetry.fit_cli import FitJob, FitRun
from wattwise.telemetry.fitting import fit_energy_models
from wattwise.telemetry.model_dir import ModelDirectory
from wattwise.telemetry.node_curves import NodeCurveFit
from wattwise.telemetry.refit import LiveNames, Refitter
from tests.telemetry.test_fitting import pair_samples
from tests.telemetry.test_refit import B, Clock, model

JOB = FitJob("http://127.0.0.1:9", step_s=15.0)
OLD = PowerCurve.linear(100.0, 300.0, sleep_w=9.0)
NEW = PowerCurve((0.0, 0.5, 1.0), (150.0, 280.0, 450.0))


def runner(curves: dict, notes: dict | None = None):
    """A fit whose only pair (B, power falling with FPS) is never accepted, with these node curves."""
    classes = [{"node_class": c, "fitted": c in curves, "note": (notes or {}).get(c, "measured 5%-95%")}
               for c in sorted(set(curves) | set(notes or {}))]

    def run(start_s, end_s):
        return FitRun(fit_energy_models(pd.concat([pair_samples(*B, 40, -0.3, 0.0, 60)])), {},
                      NodeCurveFit(dict(curves), classes))
    return run


def directory(tmp_path, node_power):
    persistence.save(tmp_path / "energy-models.json", [model(B, 8, 0.8, 0.004, 60)], node_power)
    return tmp_path / "energy-models.json"


def test_a_plausible_new_curve_replaces_the_files_and_is_loaded_though_no_pair_is_accepted(tmp_path):
    path = directory(tmp_path, {"x": OLD})
    watcher = ModelDirectory(tmp_path, check_every_s=0.0)
    version = watcher.current().version
    report = Refitter(JOB, tmp_path, clock=Clock(), runner=runner({"x": NEW, "y": NEW})).run_once()
    assert report.ok and not report.accepted() and report.written == str(path)
    x, y = report.curve_decision("x"), report.curve_decision("y")
    assert x.replaced and x.reason == "replaced: measured 5%-95%" and x.curve.power_w == NEW.power_w
    assert y.replaced and y.reason.startswith("added")
    loaded = watcher.current()
    assert loaded.version == version + 1
    assert loaded.node_power["x"] == PowerCurve(NEW.util, NEW.power_w, sleep_w=9.0)   # standby carried over
    assert loaded.node_power["y"] == NEW
    assert loaded.by_pair[B].intercept_w == 8.0                                       # the pair as it was
    assert report.as_dict()["node_power"][0] == {"node_class": "x", "verdict": "replaced",
                                                 "reason": "replaced: measured 5%-95%", "idle_w": 150.0,
                                                 "max_w": 450.0, "fitted_power_w": [150.0, 280.0, 450.0]}


@pytest.mark.parametrize("curves, notes, reason", [
    ({"x": PowerCurve((0.0, 0.5, 1.0), (150.0, 140.0, 450.0))}, None,
     "implausible fit: power falls as utilisation rises (at 50%); keeps the curve in the file"),
    ({"x": PowerCurve.linear(100.0, 6000.0)}, None,
     "implausible fit: maximum power 6000 W is above 5000 W; keeps the curve in the file"),
    ({}, {"x": "not fitted: utilisation spans only 0.10 (< 0.30)"},
     "not fitted: utilisation spans only 0.10 (< 0.30); keeps the curve in the file"),
    ({"x": PowerCurve.linear(101.0, 303.0)}, None, "within 2% of the curve in the file; kept"),
])
def test_an_implausible_unfitted_or_unchanged_curve_leaves_the_file_alone(tmp_path, curves, notes, reason):
    path = directory(tmp_path, {"x": OLD})
    before = path.read_text()
    report = Refitter(JOB, tmp_path, clock=Clock(), runner=runner(curves, notes)).run_once()
    decision = report.curve_decision("x")
    assert not decision.replaced and decision.curve == OLD and decision.reason == reason
    assert report.written == "" and path.read_text() == before


def test_a_class_whose_curve_another_file_holds_is_not_written(tmp_path):
    persistence.save(tmp_path / "catalogue.json", [], {"x": OLD})
    report = Refitter(JOB, tmp_path, clock=Clock(), runner=runner({"x": NEW})).run_once()
    decision = report.curve_decision("x")
    assert not decision.replaced and decision.curve is None
    assert decision.reason == "catalogue.json holds this class's curve and the refitter rewrites only energy-models.json"
    assert not (tmp_path / "energy-models.json").exists()
    assert ModelDirectory(tmp_path).current().node_power == {"x": OLD}


def test_a_fit_without_node_curves_keeps_the_files_curves(tmp_path):
    from tests.telemetry.test_refit import Runner, cheaper_a_and_falling_b

    directory(tmp_path, {"x": OLD})
    report = Refitter(JOB, tmp_path, clock=Clock(), runner=Runner(cheaper_a_and_falling_b())).run_once()
    assert report.node_power == () and report.accepted()
    assert persistence.load(tmp_path / "energy-models.json")[1] == {"x": OLD}


def test_a_class_the_live_loop_plans_with_a_specpower_curve_gets_no_kepler_curve(tmp_path):
    """The live loop takes a Kepler-fitted curve only for classes with no catalogue or SPECpower curve
    (`power_source.choose_power_curve`): writing one for the others changed nothing but the models'
    version, and so re-planned. Classes on a fit or a prior still get theirs."""
    path = directory(tmp_path, {})
    watcher = ModelDirectory(tmp_path, check_every_s=0.0)
    version = watcher.current().version
    refitter = Refitter(JOB, tmp_path, clock=Clock(), runner=runner({"x": NEW}))
    refitter.live = lambda: LiveNames({"n1": "x", "n2": "y"}, frozenset(), {"x": "specpower", "y": "kepler-fit"})
    before = path.read_text()
    report = refitter.run_once()
    x = report.curve_decision("x")
    assert not x.replaced and x.reason.startswith("not written: the live loop uses the specpower curve")
    assert report.written == "" and path.read_text() == before and watcher.current().version == version

    refitter = Refitter(JOB, tmp_path, clock=Clock(), runner=runner({"y": NEW}))
    refitter.live = lambda: LiveNames({"n1": "x", "n2": "y"}, frozenset(), {"x": "specpower", "y": "kepler-fit"})
    assert refitter.run_once().curve_decision("y").replaced
    assert watcher.current().node_power == {"y": NEW}
