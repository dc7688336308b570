"""`wattwise fit` against a real Prometheus loaded with series generated from a known truth."""

import json
import time

import numpy as np
import pytest

from wattwise import cli
from wattwise.models import persistence
from tests.telemetry.synthetic import CLASS_OF, TRUTH, Faults, generate, true_power_w
from wattwise.telemetry.fit_cli import FitJob
from wattwise.telemetry.refit import LiveNames, Refitter

pytestmark = pytest.mark.slow

HOURS = 6


def data_window():
    end_s = (time.time() - 3600) // 15 * 15  # promtool writes past blocks only
    return end_s - HOURS * 3600, HOURS * 3600


@pytest.mark.parametrize("schema", ["0.10", "0.9"])
def test_fit_recovers_truth_with_faults_injected(schema, prometheus_factory, tmp_path, capsys):
    start_s, duration_s = data_window()
    text, cluster = generate(schema, start_s, duration_s,
                             Faults(spikes=3, reset=True, gap_s=1200, vm_zero_power=True))
    prom = prometheus_factory(text)
    out = tmp_path / "out"
    rc = cli.main(["fit", "--prometheus", prom.url, "--start", str(cluster.start_s), "--end", str(cluster.end_s),
                   "--step", "15s", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    report = json.loads((out / "fit-report.json").read_text())
    assert report["kepler_schema"] == schema
    pairs = {(p["workload"], p["node_class"]): p for p in report["pairs"]}
    models, _ = persistence.load(out / "energy-models.json")
    by = {(m.workload, m.node_class): m for m in models}

    for (workload, node_class), (_, _, _, capacity) in TRUTH.items():
        key = (f"video/{workload}", node_class)
        entry, model = pairs[key], by[key]
        assert entry["prior"] is False and not model.prior
        grid = np.linspace(entry["fps_min"], entry["fps_max"], 25)
        truth = true_power_w(workload, node_class, grid)
        fitted = np.array([model.power.power_w(f) for f in grid])
        assert np.max(np.abs(fitted - truth) / truth) <= 0.05, (key, fitted, truth)
        assert entry["holdout_mape"] <= 0.05
        assert abs(entry["capacity_fps"] - capacity) / capacity < 0.05
        assert entry["nodes"] == sorted(n for n, c in CLASS_OF.items() if c == node_class)

    spiked = pairs[("video/detector", "intel-amx-tdx")]
    assert spiked["samples_excluded"].get("absurd_power", 0) + spiked["samples_excluded"].get("spike", 0) >= 3
    assert spiked["samples_excluded"]["gap"] >= 60           # 20 minutes at 15 s, minus the rate window
    assert sum(p["counter_resets"] for p in report["pairs"]) == 1
    vm = pairs[("video/detector", "vm.small")]
    assert vm["prior"] is True and vm["samples_excluded"]["zero_power"] > 1000 and "kept prior" in vm["note"]
    assert report["prometheus_requests"] > 0 and report["prometheus_bytes"] > 0
    table = (out / "fit-table.txt").read_text()
    assert "video/detector" in table and "prior" in table


def test_fps_counter_and_missing_kube_state_metrics(prometheus_factory, tmp_path):
    """Frames counters instead of gauges, no kube-state-metrics: workload from the pod name,
    node from Kepler's node label, one class per node."""
    start_s, duration_s = data_window()
    text, cluster = generate("0.10", start_s, 2 * 3600 - 15 * 0, Faults())
    lines = []
    frames = {}
    for line in text.splitlines():
        if line.startswith(("kube_", "# TYPE kube_")):
            continue
        if line.startswith("# TYPE infer_fps"):
            line = "# TYPE frames counter"
        if line.startswith("infer_fps{"):
            head, value, ts = line.rsplit(" ", 2)
            labels = head[len("infer_fps"):]
            frames[labels] = frames.get(labels, 0.0) + float(value) * 15
            line = f"frames_total{labels} {frames[labels]:.3f} {ts}"
        lines.append(line)
    prom = prometheus_factory("\n".join(lines) + "\n")
    out = tmp_path / "out"
    rc = cli.main(["fit", "--prometheus", prom.url, "--start", str(cluster.start_s), "--end", str(cluster.end_s),
                   "--fps-metric", "frames_total", "--fps-counter", "--drop-metric", "", "--out", str(out)])
    assert rc == 0
    report = json.loads((out / "fit-report.json").read_text())
    assert report["kube_state_metrics"] == [] and report["workload_from"].startswith("pod name")
    pairs = {(p["workload"], p["node_class"]): p for p in report["pairs"]}
    assert set(pairs) == {("video/detector", "node-a1"), ("video/detector", "node-a2"), ("video/detector", "node-b1"),
                          ("video/classifier", "node-a1"), ("video/classifier", "node-a2"),
                          ("video/classifier", "node-b1")}
    entry = pairs[("video/detector", "node-b1")]
    grid = np.linspace(entry["fps_min"], entry["fps_max"], 10)
    models, _ = persistence.load(out / "energy-models.json")
    model = next(m for m in models if (m.workload, m.node_class) == ("video/detector", "node-b1"))
    truth = true_power_w("detector", "amd-sev-snp", grid)
    assert np.max(np.abs(np.array([model.power.power_w(f) for f in grid]) - truth) / truth) <= 0.05


def test_delivering_below_the_requested_rate_is_saturation_without_a_drop_gauge(prometheus_factory, tmp_path):
    """--requested-metric: a pipeline exporting what each replica is asked for, not what it drops.
    Delivering below the rate asked for bounds the capacity as dropping does (`energy.saturated`)."""
    start_s, _ = data_window()
    text, cluster = generate("0.10", start_s, 2 * 3600, Faults())
    delivered, lines = {}, []
    for line in text.splitlines():
        if line.startswith("infer_fps{"):
            head, value, ts = line.rsplit(" ", 2)
            delivered[(head[len("infer_fps"):], ts)] = float(value)
    for line in text.splitlines():
        if line.startswith("# TYPE drop_fps"):
            line = "# TYPE requested_fps gauge"
        elif line.startswith("drop_fps{"):
            head, value, ts = line.rsplit(" ", 2)
            labels = head[len("drop_fps"):]
            line = f"requested_fps{labels} {delivered[(labels, ts)] + float(value):.4f} {ts}"
        lines.append(line)
    prom = prometheus_factory("\n".join(lines) + "\n")
    fits = {}
    for name, flags in (("requested", ["--requested-metric", "requested_fps"]), ("neither", [])):
        out = tmp_path / name
        assert cli.main(["fit", "--prometheus", prom.url, "--start", str(cluster.start_s), "--end", str(cluster.end_s),
                         "--drop-metric", "", *flags, "--out", str(out)]) == 0
        report = json.loads((out / "fit-report.json").read_text())
        fits[name] = {(p["workload"], p["node_class"]): p for p in report["pairs"] if not p["prior"]}
    assert fits["requested"]
    for pair, p in fits["requested"].items():
        assert "never seen saturated" not in p["note"], (pair, p["note"])
        assert "never seen saturated" in fits["neither"][pair]["note"]


def test_a_refit_classes_nodes_by_the_live_node_watch_and_reports_pairs_no_one_plans(prometheus_factory, tmp_path):
    """kube-state-metrics v2 as shipped: no kube_node_labels classes (no allowlist). A refit in
    serve classes each node as serve's node watch does, so its models match the live pairs; pairs
    the live loop does not plan are reported, not silently ignored."""
    start_s, _ = data_window()
    text, cluster = generate("0.10", start_s, 2 * 3600, Faults())
    prom = prometheus_factory("\n".join(line for line in text.splitlines()
                                        if "kube_node_labels" not in line) + "\n")
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    refitter = Refitter(FitJob(prom.url), models_dir, clock=lambda: cluster.end_s + 15.0, window_s=2 * 3600 - 60)
    refitter.live = lambda: LiveNames(CLASS_OF, frozenset({"video/detector"}))
    report = refitter.run_once()
    assert report.ok, report.error
    fitted = {(d.workload, d.node_class) for d in report.decisions}
    assert ("video/detector", "intel-amx-tdx") in fitted and ("video/detector", "amd-sev-snp") in fitted
    assert not any(c.startswith("node-") for _, c in fitted)           # classes, not one class per node
    assert report.unmatched and all(w == "video/classifier" for w, _ in report.unmatched)
    doc = report.as_dict()
    assert "video/classifier on intel-amx-tdx" in doc["unmatched_pairs"]
    assert "--metric-labels-allowlist" in doc["unmatched_hint"]


def test_no_kepler_data_is_a_clear_error(prometheus_factory, tmp_path, capsys):
    start_s, duration_s = data_window()
    text, cluster = generate("0.10", start_s, 1800, Faults())
    only_fps = [line for line in text.splitlines() if not line.startswith(("kepler_", "# TYPE kepler_"))]
    prom = prometheus_factory("\n".join(only_fps) + "\n")
    rc = cli.main(["fit", "--prometheus", prom.url, "--start", str(cluster.start_s), "--end", str(cluster.end_s),
                   "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert err[-1].startswith("wattwise fit: error: no Kepler power counters")
    assert not (tmp_path / "out" / "energy-models.json").exists()


def test_wrong_fps_metric_says_which_flag_to_fix(prometheus_factory, tmp_path, capsys):
    start_s, _ = data_window()
    text, cluster = generate("0.9", start_s, 1800, Faults())
    prom = prometheus_factory(text)
    rc = cli.main(["fit", "--prometheus", prom.url, "--start", str(cluster.start_s), "--end", str(cluster.end_s),
                   "--fps-metric", "inference_fps", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and "'inference_fps'" in err[-1] and "--fps-metric" in err[-1]


def test_gpu_power_is_added_when_kepler_exports_it(prometheus_factory, tmp_path):
    start_s, _ = data_window()
    text, cluster = generate("0.10", start_s, 2 * 3600, Faults(gpu_w=25.0))
    prom = prometheus_factory(text)
    out = tmp_path / "out"
    assert cli.main(["fit", "--prometheus", prom.url, "--start", str(cluster.start_s), "--end", str(cluster.end_s),
                     "--out", str(out)]) == 0
    report = json.loads((out / "fit-report.json").read_text())
    assert report["gpu_power"] is True
    entry = next(p for p in report["pairs"] if (p["workload"], p["node_class"]) == ("video/detector", "amd-sev-snp"))
    truth = true_power_w("detector", "amd-sev-snp", entry["fps_median"]) + 25.0
    assert entry["power_w_at_fps_median"] == pytest.approx(truth, rel=0.03)


def test_chunked_fetch_gives_the_same_samples_and_resets(prometheus_factory):
    from wattwise.telemetry.prometheus import PrometheusClient, PrometheusPowerFpsSource

    start_s, _ = data_window()
    text, cluster = generate("0.10", start_s, 2 * 3600, Faults(reset=True, gap_s=600))
    prom = prometheus_factory(text)
    whole = PrometheusPowerFpsSource(PrometheusClient(prom.url))
    chunked = PrometheusPowerFpsSource(PrometheusClient(prom.url, max_points=97))
    a = whole.samples(cluster.start_s, cluster.end_s, 15)
    b = chunked.samples(cluster.start_s, cluster.end_s, 15)
    # per chunk: 6 range queries and 2 instant ones; kube_pod_info over time is not needed, as Kepler's
    # node_name places every sample (no pod moved)
    assert (whole.client.stats.requests, chunked.client.stats.requests) == (1 + 8, 1 + 5 * 8)  # 481 steps / 97
    assert a.equals(b)
    assert whole.last.pair_info == chunked.last.pair_info
    assert sum(v["counter_resets"] for v in whole.last.pair_info.values()) == 1
    assert whole.last.exclusions == chunked.last.exclusions


def test_the_planner_uses_what_fit_wrote(prometheus_factory, tmp_path):
    """`wattwise fit` output, loaded as a scenario's energy models, replaces the priors in plans."""
    from wattwise.models.cluster import Node, NodeClass
    from wattwise.models.planner import plan
    from wattwise.models.resources import Resources
    from wattwise.models.snapshot import build_snapshot
    from wattwise.models.workload import Demand, Workload

    start_s, duration_s = data_window()
    text, cluster = generate("0.10", start_s, duration_s, Faults())
    prom = prometheus_factory(text)
    out = tmp_path / "out"
    assert cli.main(["fit", "--prometheus", prom.url, "--start", str(cluster.start_s), "--end", str(cluster.end_s),
                     "--step", "15s", "--out", str(out)]) == 0
    models, _ = persistence.load(out / "energy-models.json")
    fitted = {(m.workload, m.node_class): m for m in models}
    cls = NodeClass("intel-amx-tdx", cores=112, amx=True)
    w = Workload(name="detector", namespace="video", demand=Demand(total_fps=100.0))
    snap = build_snapshot(0.0, [cls], [Node("n1", cls.name, allocatable=Resources(111000, 500000))], [w],
                          models=fitted)
    model = snap.model(w, cls)
    assert model is fitted[("video/detector", "intel-amx-tdx")] and not model.prior
    wp = plan(snap)[0].workloads["video/detector"]
    assert wp.capacity_fps == pytest.approx(wp.replicas * model.capacity_fps)
