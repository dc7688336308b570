"""Kepler and kube-state-metrics read exactly, through a real Prometheus: a pod that moves between
nodes, exporter restarts, kube_pod_labels without the workload label, GPU power of both schemas."""

import json
import time

import numpy as np
import pytest

from tests.telemetry.synthetic import CLASS_OF, NODES, TRUTH, Faults, generate, generate_moving, true_power_w
from wattwise import cli
from wattwise.models import persistence
from wattwise.telemetry.prometheus import PrometheusClient, PrometheusPowerFpsSource

pytestmark = pytest.mark.slow


def window(hours):
    end_s = (time.time() - 3600) // 15 * 15  # promtool writes past blocks only
    return end_s - hours * 3600, hours * 3600


def max_relative_error(model, workload, node_class, fps_lo, fps_hi):
    grid = np.linspace(fps_lo, fps_hi, 25)
    truth = true_power_w(workload, node_class, grid)
    return float(np.max(np.abs(np.array([model.power.power_w(f) for f in grid]) - truth) / truth))


@pytest.mark.parametrize("schema, kepler_instance, honor", [
    ("0.10", "node", True), ("0.9", "node", True), ("0.9", "address", True), ("0.9", "address", False)],
    ids=["0.10-node_name", "0.9-instance-relabelled", "0.9-instance-address+kube_pod_info",
         "0.9-instance-address+kube_pod_info-without-honor_labels"])
def test_a_pod_rescheduled_onto_another_node_class_fits_both_pairs(schema, kepler_instance, honor, prometheus_factory,
                                                                   tmp_path):
    """Without honor_labels (a ServiceMonitor's default) kube-state-metrics' series name its own
    pod in `namespace`/`pod` and the pod they describe in exported_*: read as written, no pod
    would be placed."""
    start_s, duration_s = window(4)
    text, truth = generate_moving(schema, start_s, duration_s, kepler_instance=kepler_instance,
                                  ksm_honor_labels=honor)
    assert ('exported_pod="detector-0"' in text) is not honor
    prom = prometheus_factory(text)
    source = PrometheusPowerFpsSource(PrometheusClient(prom.url))

    samples = source.samples(truth["start_s"], truth["end_s"], 15)

    detector = samples[samples["workload"] == "video/detector"]
    before, after = detector[detector["t_s"] < truth["mid_s"]], detector[detector["t_s"] >= truth["moved_s"] + 300]
    assert set(before["node"]) == {"node-a1"} and set(before["node_class"]) == {"intel-amx-tdx"}
    assert set(after["node"]) == {"node-b1"} and set(after["node_class"]) == {"amd-sev-snp"}
    assert len(before) > 400 and len(after) > 400
    if kepler_instance == "address":
        assert source.last.kepler_node_aliases == {"10.0.1.11:9102": "node-a1", "10.0.2.21:9102": "node-b1"}
    # the windows its counter covers only in part read low and are left out: the data's first minute
    # (every series starts there: 3 steps of 15 s in a 60 s window) and, for the moved pod, its series
    # ending on A and starting on B (a few more); none in between
    partial = {pair: counts.get("partial_window", 0) for pair, counts in source.last.exclusions.items()}
    assert partial[("video/classifier", "intel-amx-tdx")] == 3
    assert 5 <= partial[("video/detector", "intel-amx-tdx")] <= 8      # the first minute, and its end on A
    assert 2 <= partial[("video/detector", "amd-sev-snp")] <= 4        # its start on B

    out = tmp_path / "out"  # what `wattwise fit` saves for the planner
    assert cli.main(["fit", "--prometheus", prom.url, "--start", str(truth["start_s"]), "--end", str(truth["end_s"]),
                     "--out", str(out)]) == 0
    models, _ = persistence.load(out / "energy-models.json")
    by = {(m.workload, m.node_class): m for m in models}
    pairs = {(p["workload"], p["node_class"]): p for p in json.loads((out / "fit-report.json").read_text())["pairs"]}
    for node, node_class in (("node-a1", "intel-amx-tdx"), ("node-b1", "amd-sev-snp")):
        model, entry = by[("video/detector", node_class)], pairs[("video/detector", node_class)]
        assert not model.prior and entry["prior"] is False
        assert max_relative_error(model, "detector", node_class, entry["fps_min"], entry["fps_max"]) <= 0.05
        assert entry["holdout_mape"] <= 0.05
        _, fps = truth["delivered"][node]
        assert entry["samples_used"] >= 0.9 * len(fps) and entry["nodes"] == [node]
        # power rises with FPS, as it does on each class (lumped together it fell)
        assert entry["power_w_at_fps_max"] > entry["power_w_at_fps_min"]
    assert ("video/detector", "?") not in pairs
    assert max_relative_error(by[("video/classifier", "intel-amx-tdx")], "classifier", "intel-amx-tdx", 12, 88) <= 0.05


def test_a_kepler_09_restart_is_one_counter_reset(prometheus_factory, tmp_path):
    """Every container series of every pod on the node resets at once: one event, per pair and in all."""
    start_s, _ = window(2)
    text, cluster = generate("0.9", start_s, 2 * 3600, Faults(restart_node="node-a1", containers=2))
    prom = prometheus_factory(text)
    out = tmp_path / "out"
    assert cli.main(["fit", "--prometheus", prom.url, "--start", str(cluster.start_s), "--end", str(cluster.end_s),
                     "--out", str(out)]) == 0
    report = json.loads((out / "fit-report.json").read_text())
    resets = {(p["workload"], p["node_class"]): p["counter_resets"] for p in report["pairs"]}
    assert report["counter_resets"] == 1
    assert resets == {("video/detector", "intel-amx-tdx"): 1, ("video/classifier", "intel-amx-tdx"): 1,
                      ("video/detector", "amd-sev-snp"): 0, ("video/classifier", "amd-sev-snp"): 0}
    for workload, node_class in TRUTH:  # rate() bridged the restart
        entry = next(p for p in report["pairs"] if (p["workload"], p["node_class"]) == (f"video/{workload}", node_class))
        assert entry["holdout_mape"] <= 0.05 and entry["prior"] is False


def test_samples_whose_rate_window_holds_a_restart_are_left_out(prometheus_factory):
    """A restarted exporter misses its downtime's energy, which rate() cannot bridge: the samples
    whose window holds the reset read low, so they are left out and counted, on that node only."""
    start_s, _ = window(2)
    text, cluster = generate("0.10", start_s, 2 * 3600, Faults(restart_node="node-a1"))
    prom = prometheus_factory(text)
    source = PrometheusPowerFpsSource(PrometheusClient(prom.url))
    samples = source.samples(cluster.start_s, cluster.end_s, 15)
    restart_s = cluster.start_s + (int((cluster.end_s - cluster.start_s) // 15 + 1) // 2) * 15
    on_a1 = samples[samples["node"] == "node-a1"]
    assert not ((on_a1["t_s"] >= restart_s) & (on_a1["t_s"] < restart_s + 45)).any()   # the 60 s windows holding it
    assert ((on_a1["t_s"] >= restart_s + 60) & (on_a1["t_s"] < restart_s + 120)).sum() == 2 * 4   # then back
    excluded = {pair: counts.get("counter_reset", 0) for pair, counts in source.last.exclusions.items()}
    assert 3 <= excluded[("video/detector", "intel-amx-tdx")] <= 5          # one pod of the pair is on node-a1
    assert excluded[("video/detector", "intel-amx-tdx")] == excluded[("video/classifier", "intel-amx-tdx")]
    assert excluded.get(("video/detector", "amd-sev-snp"), 0) == 0
    assert source.last.counter_resets == 1


def test_a_restart_and_a_lone_series_reset_are_two_events(prometheus_factory):
    start_s, _ = window(2)
    text, cluster = generate("0.10", start_s, 2 * 3600, Faults(restart_node="node-a1", reset=True))
    prom = prometheus_factory(text)
    source = PrometheusPowerFpsSource(PrometheusClient(prom.url, max_points=97))  # events across chunk bounds too
    source.samples(cluster.start_s, cluster.end_s, 15)
    assert source.last.counter_resets == 2
    # the lone reset (a classifier pod on node-a1, a third in) and the restart (half way) both touch it
    assert source.last.pair_info == {("video/classifier", "intel-amx-tdx"): {"counter_resets": 2},
                                     ("video/detector", "intel-amx-tdx"): {"counter_resets": 1}}


def without_workload_label(text):
    """What kube-state-metrics v2 exports by default: kube_pod_labels with no pod label at all."""
    return "\n".join(line.replace(',label_app_kubernetes_io_name="detector"', "")
                     .replace(',label_app_kubernetes_io_name="classifier"', "")
                     if line.startswith("kube_pod_labels{") else line for line in text.splitlines()) + "\n"


def test_kube_pod_labels_without_the_label_is_not_called_absent(prometheus_factory):
    start_s, _ = window(1)
    text, cluster = generate("0.10", start_s, 1800, Faults())
    prom = prometheus_factory(without_workload_label(text))
    source = PrometheusPowerFpsSource(PrometheusClient(prom.url))
    samples = source.samples(cluster.start_s, cluster.end_s, 15)
    assert "kube_pod_labels" in source.last.kube_metrics
    said = source.last.workload_source
    assert "absent" not in said
    assert "kube_pod_labels has no label_app_kubernetes_io_name" in said and "--metric-labels-allowlist" in said
    assert set(samples["workload"]) == {"video/detector", "video/classifier"}  # from the pod names


def test_kube_pod_labels_absent_is_called_absent(prometheus_factory):
    start_s, _ = window(1)
    text, cluster = generate("0.10", start_s, 1800, Faults())
    kept = [line for line in text.splitlines() if not line.startswith(("kube_pod_labels", "# TYPE kube_pod_labels"))]
    prom = prometheus_factory("\n".join(kept) + "\n")
    source = PrometheusPowerFpsSource(PrometheusClient(prom.url))
    source.samples(cluster.start_s, cluster.end_s, 15)
    assert source.last.workload_source == "pod name (kube_pod_labels absent)"


@pytest.mark.parametrize("schema, node_gpu", [("0.10", True), ("0.9", True), ("0.10", False)],
                         ids=["0.10-kepler_node_gpu_watts", "0.9-kepler_node_gpu_joules_total", "0.10-no-node-gpu"])
def test_gpu_power_of_both_schemas(schema, node_gpu, prometheus_factory, tmp_path):
    """A 200 W GPU per pod dwarfs the node's CPU power: without the node's GPU power every sample
    would look like a pod drawing more than its node."""
    start_s, _ = window(2)
    text, cluster = generate(schema, start_s, 2 * 3600, Faults(gpu_w=200.0, node_gpu=node_gpu))
    assert ("kepler_pod_gpu_joules_total{" if schema == "0.10" else "kepler_container_gpu_joules_total{") in text
    prom = prometheus_factory(text)
    out = tmp_path / "out"
    assert cli.main(["fit", "--prometheus", prom.url, "--start", str(cluster.start_s), "--end", str(cluster.end_s),
                     "--schema", schema, "--out", str(out)]) == 0
    report = json.loads((out / "fit-report.json").read_text())
    assert report["gpu_power"] is True and report["kepler_schema"] == schema
    for workload, node_class in TRUTH:
        entry = next(p for p in report["pairs"] if (p["workload"], p["node_class"]) == (f"video/{workload}", node_class))
        assert "pod_above_node" not in entry["samples_excluded"]
        assert entry["prior"] is False
        truth = true_power_w(workload, node_class, entry["fps_median"]) + 200.0
        assert entry["power_w_at_fps_median"] == pytest.approx(truth, rel=0.02)
    assert sorted(NODES) == sorted(CLASS_OF)
