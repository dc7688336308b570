import json

import pytest

from wattwise.models import persistence
from wattwise.models.energy import WorkloadClassModel
from wattwise.models.errors import ModelFileError
from wattwise.models.power_curve import PowerCurve
from wattwise.models.replica_model import ReplicaPowerModel


def _model():
    return WorkloadClassModel("retail/cams", "spr-amx-tdx", ReplicaPowerModel.from_coefficients(5.0, 0.9, 0.001, 0.4),
                              capacity_fps=23.5, capacity_std_fps=1.2, prior=False, n_samples=4000, source="fit")


def test_round_trip_keeps_every_number(tmp_path):
    path = tmp_path / "models.json"
    curve = PowerCurve.specpower(110, [181, 212, 244, 269, 303, 342, 386, 443, 514, 623], sleep_w=14)
    persistence.save(path, [_model()], {"spr-amx-tdx": curve})
    models, curves = persistence.load(path)
    (m,) = models
    assert (m.workload, m.node_class, m.capacity_fps, m.n_samples, m.prior) == ("retail/cams", "spr-amx-tdx", 23.5, 4000, False)
    assert m.replica_power_w(10) == pytest.approx(_model().replica_power_w(10))
    assert curves["spr-amx-tdx"] == curve
    assert json.loads(path.read_text())["version"] == persistence.VERSION


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(version=99), "version 99 is not supported"),
    (lambda d: d.update(format="something-else"), "not a WattWise energy-model file"),
    (lambda d: d["models"][0].update(capacity_fps="fast"), "models[0].capacity_fps"),
    (lambda d: d["models"][0].pop("workload"), "models[0].workload"),
    (lambda d: d["models"][0].update(capacity_fps=-1), "must be at least 0"),
    (lambda d: d.update(models={}), "\"models\" must be a list"),
    (lambda d: d.update(node_power=[1]), "\"node_power\" must be an object"),
    (lambda d: d.update(node_power={"x": [1]}), "node_power['x']"),
])
def test_bad_files_are_refused_with_the_field_named(mutate, message):
    doc = json.loads(persistence.dumps([_model()]))
    mutate(doc)
    with pytest.raises(ModelFileError, match=message.replace("[", r"\[").replace("]", r"\]")):
        persistence.loads(json.dumps(doc), "m.json")


def test_not_utf8_is_refused_as_a_model_file_error(tmp_path):
    (tmp_path / "m.json").write_bytes(b"\xff\xfe{\x00")
    with pytest.raises(ModelFileError, match="m.json: not UTF-8 text"):
        persistence.load(tmp_path / "m.json")


def test_non_json_and_nan_are_refused():
    with pytest.raises(ModelFileError, match="not JSON"):
        persistence.loads("\x80\x04pickle", "m.pkl")
    doc = persistence.dumps([_model()]).replace('"intercept_w": 5.0', '"intercept_w": NaN')
    with pytest.raises(ModelFileError, match="intercept_w"):
        persistence.loads(doc)
