"""Node classes' power curves through a real Prometheus loaded with Kepler node power that follows a
known curve of utilisation (both schemas): `wattwise fit` writes the curve of a class whose nodes
span the range, reports the one whose nodes do not, and the live loop's node inventory takes the
written curve as `kepler-fit`; the refitter replaces a file's curve with a fresh fit."""

import json
import time

import numpy as np
import pytest

from tests.telemetry.synthetic import NAMESPACE, NODES, TRUTH, Faults, generate
from tests.telemetry.synthetic_nodes import EXPORTER_ADDRESS, true_node_power_w, with_node_power
from wattwise import cli
from wattwise.models import persistence
from wattwise.models.cluster_nodes import cluster_nodes
from wattwise.models.energy import WorkloadClassModel
from wattwise.models.labels import DEFAULT_MAPPING
from wattwise.models.power_curve import PowerCurve
from wattwise.models.power_source import PowerCurveSource
from wattwise.models.replica_model import ReplicaPowerModel
from wattwise.telemetry.fit_cli import FitJob
from wattwise.telemetry.model_dir import ModelDirectory
from wattwise.telemetry.prometheus.frames import k8s_labels_from_ksm
from wattwise.telemetry.refit import Refitter

pytestmark = pytest.mark.slow

HOURS = 3


def data_window():
    end_s = (time.time() - 3600) // 15 * 15  # promtool writes past blocks only
    return end_s - HOURS * 3600, HOURS * 3600


def node_json(name: str) -> dict:
    """The Node the Kubernetes API serves for a synthetic node (kube-state-metrics' labels, back)."""
    return {"metadata": {"name": name, "labels": k8s_labels_from_ksm(NODES[name], DEFAULT_MAPPING)},
            "status": {"capacity": {"cpu": "64", "memory": "256Gi"}, "allocatable": {"cpu": "63", "memory": "250Gi"},
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def assert_matches_truth(curve: PowerCurve, node_class: str, measured: list[float]) -> None:
    assert len(measured) >= 8, measured                          # 0.02-0.98 spanned: 0.1 ... 0.9 at least
    truth = true_node_power_w(node_class, measured)
    assert np.max(np.abs(curve.at(measured) / truth - 1)) <= 0.05, (curve.power_w, truth)
    assert all(b >= a for a, b in zip(curve.power_w, curve.power_w[1:]))


@pytest.mark.parametrize("schema", ["0.10", "0.9"])
def test_fit_writes_the_curve_reports_the_narrow_class_and_the_inventory_takes_it(schema, prometheus_factory,
                                                                                  tmp_path, capsys):
    start_s, duration_s = data_window()
    text, cluster = generate(schema, start_s, duration_s, Faults(vm_zero_power=True))
    prom = prometheus_factory(with_node_power(schema, text, cluster))
    out = tmp_path / "out"
    rc = cli.main(["fit", "--prometheus", prom.url, "--start", str(cluster.start_s), "--end", str(cluster.end_s),
                   "--out", str(out)])
    stdout = capsys.readouterr().out
    assert rc == 0
    report = json.loads((out / "fit-report.json").read_text())["node_power"]
    classes = {e["node_class"]: e for e in report["classes"]}
    _, curves = persistence.load(out / "energy-models.json")

    amx = classes["intel-amx-tdx"]
    assert amx["fitted"] and amx["nodes"] == ["node-a1", "node-a2"]
    assert amx["samples_used"] >= 2 * HOURS * 240 - 20                # two nodes, every 15 s step but the first
    assert amx["util_min"] < 0.1 and amx["util_max"] > 0.9
    assert_matches_truth(curves["intel-amx-tdx"], "intel-amx-tdx", amx["points_measured"])
    assert amx["idle_w"] == curves["intel-amx-tdx"].idle_w and amx["max_w"] == curves["intel-amx-tdx"].max_w

    snp = classes["amd-sev-snp"]                                       # 0.35-0.50 only
    assert not snp["fitted"] and "utilisation spans only" in snp["note"] and snp["samples_used"] > 500
    assert 0.3 < snp["util_min"] < snp["util_max"] < 0.55
    vm = classes["vm.small"]                                           # no RAPL in the VM
    assert not vm["fitted"] and vm["samples_excluded"]["zero_power"] > 500
    assert set(curves) == {"intel-amx-tdx"}

    if schema == "0.10":
        assert report["utilisation_from"] == "kepler"
        assert report["power_query"].startswith('sum by (node_name) (avg_over_time(kepler_node_cpu_watts{zone="package"}')
    else:
        assert report["utilisation_from"] == "node_exporter"
        assert report["node_exporter_instances"] == {a: n for n, a in EXPORTER_ADDRESS.items()}
        assert report["power_query"] == "sum by (instance) (rate(kepler_node_package_joules_total[60s]))"
    assert "intel-amx-tdx" in stdout and "not fitted: utilisation spans only" in stdout
    assert "1 node power curves" in stdout

    # what the live loop's node inventory (kube/inputs.py ClusterInventory) makes of the file, mounted
    # as the README says (a ConfigMap of energy-models.json)
    mounted = tmp_path / "configmap"
    mounted.mkdir()
    (mounted / "energy-models.json").write_text((out / "energy-models.json").read_text())
    loaded = ModelDirectory(mounted).current()
    assert loaded.error == ""
    inventory = cluster_nodes([node_json("node-a1"), node_json("node-b1")], [], [], fitted_curves=loaded.node_power)
    chosen = inventory.curve_sources["intel-amx-tdx"]
    assert chosen.source is PowerCurveSource.KEPLER_FIT
    assert inventory.node_classes["intel-amx-tdx"].power == curves["intel-amx-tdx"]
    assert inventory.curve_sources["amd-sev-snp"].source is PowerCurveSource.PRIOR


def test_the_refitter_replaces_a_stale_curve_and_keeps_the_unfitted_one(prometheus_factory, tmp_path):
    start_s, duration_s = data_window()
    text, cluster = generate("0.10", start_s, duration_s, Faults())
    prom = prometheus_factory(with_node_power("0.10", text, cluster))
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    stale, snp = PowerCurve.linear(100.0, 300.0, sleep_w=12.0), PowerCurve.linear(90.0, 250.0)
    persistence.save(models_dir / "energy-models.json", [
        WorkloadClassModel(f"{NAMESPACE}/{w}", c, ReplicaPowerModel.from_coefficients(c0, c1, c2), cap, prior=False,
                           n_samples=5000, source="kepler-0.10")
        for (w, c), (c0, c1, c2, cap) in TRUTH.items()], {"intel-amx-tdx": stale, "amd-sev-snp": snp})
    watcher = ModelDirectory(models_dir, check_every_s=0.0)
    refitter = Refitter(FitJob(prom.url, timeout_s=5.0, retries=0), models_dir, window_s=HOURS * 3600,
                        clock=lambda: cluster.end_s + 7.0)

    report = refitter.run_once()
    assert report.ok, report.error
    amx, kept = report.curve_decision("intel-amx-tdx"), report.curve_decision("amd-sev-snp")
    assert amx.replaced and amx.reason.startswith("replaced: measured")
    assert not kept.replaced and kept.curve == snp and "utilisation spans only" in kept.reason
    assert report.written == str(models_dir / "energy-models.json")
    loaded = watcher.current().node_power
    assert loaded["amd-sev-snp"] == snp
    assert loaded["intel-amx-tdx"].sleep_w == 12.0                     # standby power is not measured: kept
    assert_matches_truth(loaded["intel-amx-tdx"], "intel-amx-tdx", [u / 10 for u in range(1, 10)])
    assert report.as_dict()["node_power"][0]["verdict"] in ("replaced", "kept")

    again = refitter.run_once()                                          # the same data: nothing to change
    assert not again.curve_decision("intel-amx-tdx").replaced
    assert "within 2%" in again.curve_decision("intel-amx-tdx").reason
