"""Energy models from a directory: loaded at start, reloaded on change (also through a ConfigMap's
..data symlink swap), and a broken update keeps the models loaded before."""

import os

import pytest

from wattwise.models import persistence
from wattwise.models.energy import WorkloadClassModel
from wattwise.models.errors import InvalidInputError
from wattwise.models.replica_model import ReplicaPowerModel
from wattwise.telemetry.model_dir import ModelDirectory


def model(workload="retail/checkout-cams", node_class="spr-amx-tdx", capacity_fps=50.0):
    return WorkloadClassModel(workload, node_class, ReplicaPowerModel.from_coefficients(20.0, 1.5, 0.0, 2.0),
                              capacity_fps, prior=False, n_samples=20, source="fitted")


class Clock:
    t = 0.0

    def __call__(self):
        return self.t


def test_loads_reloads_and_keeps_the_last_good_set(tmp_path):
    persistence.save(tmp_path / "energy-models.json", [model()])
    clock = Clock()
    d = ModelDirectory(tmp_path, check_every_s=5.0, clock=clock)
    first = d.current()
    assert first.version == 1 and first.error == ""
    assert first.by_pair[("retail/checkout-cams", "spr-amx-tdx")].capacity_fps == 50.0

    persistence.save(tmp_path / "more.json", [model(node_class="icx-sgx", capacity_fps=30.0)])
    assert d.current() is first                      # not checked again before check_every_s
    clock.t = 5.0
    second = d.current()
    assert second.version == 2 and set(second.by_pair) == {("retail/checkout-cams", "spr-amx-tdx"),
                                                           ("retail/checkout-cams", "icx-sgx")}

    (tmp_path / "more.json").write_text("{ not json")
    clock.t = 10.0
    third = d.current()
    assert third.version == 2 and third.by_pair == second.by_pair
    assert "more.json" in third.error

    persistence.save(tmp_path / "more.json", [model(capacity_fps=40.0)])   # the same pair twice
    clock.t = 15.0
    assert "also in" in d.current().error and d.current().by_pair == second.by_pair

    for broken in (b"\xff\xfe{\x00", b'{"format": "wattwise.energy-models", "version": 1, "models": [], '
                                         b'"node_power": [1]}'):   # not UTF-8; a curve map that is a list
        (tmp_path / "more.json").write_bytes(broken)
        clock.t += 5.0
        kept = d.current()                         # never raises: the refresher calls this every refresh
        assert kept.version == 2 and kept.by_pair == second.by_pair and "more.json" in kept.error


def test_configmap_symlink_swap_is_seen(tmp_path):
    for name, cap in (("..2026_12_02_a", 50.0), ("..2026_12_02_b", 25.0)):
        (tmp_path / name).mkdir()
        persistence.save(tmp_path / name / "energy-models.json", [model(capacity_fps=cap)])
    os.symlink("..2026_12_02_a", tmp_path / "..data")
    os.symlink("..data/energy-models.json", tmp_path / "energy-models.json")
    clock = Clock()
    d = ModelDirectory(tmp_path, check_every_s=1.0, clock=clock)
    assert d.current().by_pair[("retail/checkout-cams", "spr-amx-tdx")].capacity_fps == 50.0
    os.symlink("..2026_12_02_b", tmp_path / "..data_tmp")
    os.replace(tmp_path / "..data_tmp", tmp_path / "..data")      # what kubelet does
    clock.t = 1.0
    assert d.current().by_pair[("retail/checkout-cams", "spr-amx-tdx")].capacity_fps == 25.0


def test_a_wattwise_fit_out_folder_can_be_used_as_is(tmp_path):
    persistence.save(tmp_path / "energy-models.json", [model()])
    (tmp_path / "fit-report.json").write_text('{"pairs": []}')
    (tmp_path / "fit-table.txt").write_text("workload  class ...")
    got = ModelDirectory(tmp_path).current()
    assert got.error == "" and set(got.by_pair) == {("retail/checkout-cams", "spr-amx-tdx")}


def test_not_a_directory_is_one_clear_error(tmp_path):
    with pytest.raises(InvalidInputError, match="is not a directory"):
        ModelDirectory(tmp_path / "missing")
