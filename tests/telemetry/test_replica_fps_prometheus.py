"""The live ReplicaFpsSource against a real Prometheus holding the reference pipeline's `infer_fps`
and `drop_fps` gauges, joined to WattWise's pods as the pod watch gives them; and through the
refresher, the capacity of the pair whose replicas drop frames is lowered."""

from __future__ import annotations

import math
import time

import pytest

from wattwise.kube.workload_pods import PodRecord
from wattwise.models.ports import ReplicaFpsSource, ReplicaSample
from wattwise.scaler.app import build_scaler, settings_from_snapshot
from wattwise.scaler.metadata import parse_metadata
from wattwise.scaler.sources import ScenarioCarbon, ScenarioInventory, catalogue, demo_metadata, recorded_demand
from wattwise.telemetry.prometheus import NoFpsData, PrometheusUnavailable, TelemetryError
from wattwise.telemetry.prometheus.replica_fps import PrometheusReplicaFps, ReplicaFpsSettings

from tests.scaler.helpers import snapshot

KEY = "retail/checkout-cams"
END_S = (time.time() - 3600) // 15 * 15          # promtool writes only blocks in the past
STEP_S, POINTS = 15, 40


def gauges() -> str:
    """(namespace, pod) -> (infer_fps, drop_fps or None), constant over ten minutes."""
    pods = {("retail", "cams-a"): (14.0, 3.0), ("retail", "cams-b"): (16.0, 2.0),
            ("retail", "cams-c"): (5.0, 10.0),      # not ready: left out
            ("retail", "cams-d"): (30.0, None),     # no drop_fps series: left out
            ("other", "tenant-x"): (99.0, 50.0),    # not a WattWise pod: ignored
            # a burst: saturated (27 fps, dropping 8) for one 15 s scrape of the last minute, else 20 fps
            ("retail", "cams-burst"): ([20.0, 20.0, 20.0, 27.0, 20.0], [0.0, 0.0, 0.0, 8.0, 0.0]),
            ("retail", "cams-slow"): (12.0, 8.0)}   # saturated all along at 12 fps
    lines = []
    for metric, i in (("infer_fps", 0), ("drop_fps", 1)):
        lines += [f"# TYPE {metric} gauge", f"# HELP {metric} frames per second over the last 60 s"]
        for (ns, pod), values in pods.items():
            if values[i] is None:
                continue
            last = values[i] if isinstance(values[i], list) else [values[i]]
            for k in range(POINTS):
                t = END_S - (POINTS - 1 - k) * STEP_S
                value = last[max(0, len(last) - (POINTS - k))]
                lines.append(f'{metric}{{namespace="{ns}",pod="{pod}",instance="{pod}:8080",'
                             f'job="inference"}} {value} {t:.0f}')
        for k in range(POINTS):   # a StatefulSet pod rescheduled 20 s ago: its target's address changed
            t = END_S - (POINTS - 1 - k) * STEP_S
            instance = "10.0.0.7:8080" if k < POINTS - 2 else "10.0.9.9:8080"
            lines.append(f'{metric}{{namespace="retail",pod="cams-moved",instance="{instance}",'
                         f'job="inference"}} {10.0 if i == 0 else 0.0} {t:.0f}')
    # the burst again, as frame counters (what a pipeline counting frames exports), scraped every 15 s
    for metric, per_s in (("frames_total", [20.0] * (POINTS - 2) + [27.0, 20.0]),
                          ("dropped_frames_total", [0.0] * (POINTS - 2) + [8.0, 0.0])):
        lines += [f"# TYPE {metric.removesuffix('_total')} counter", f"# HELP {metric.removesuffix('_total')} frames"]
        total = 0.0
        for k in range(POINTS):
            total += per_s[k] * STEP_S if k else 0.0
            t = END_S - (POINTS - 1 - k) * STEP_S
            lines.append(f'{metric}{{namespace="retail",pod="cams-burst",instance="cams-burst:8080",'
                         f'job="inference"}} {total} {t:.0f}')
    return "\n".join(lines + ["# EOF", ""])


class Pods:
    """WattWise's pods as the pod watch (`kube.workload_pods.WorkloadPods`) serves them."""

    def __init__(self, records, known=True):
        self.records, self.known = tuple(records), known

    def pods(self):
        return self.records


def record(name, node, ready=True, ready_since_s=None) -> PodRecord:
    return PodRecord("retail", name, KEY, node, ready, None, "1", ready_since_s=ready_since_s)


PODS = Pods([record("cams-a", "de-spr-1"), record("cams-b", "de-spr-2"), record("cams-c", "de-spr-2", ready=False),
             record("cams-d", "de-spr-3")])


@pytest.fixture(scope="module")
def prom(tmp_path_factory):
    from tests.prometheus_fixture import PrometheusFixtureError, start_prometheus

    try:        # one Prometheus for the module (conftest's `prometheus_factory` starts one per test)
        running = start_prometheus(gauges(), tmp_path_factory.mktemp("prometheus"))
    except PrometheusFixtureError as e:
        pytest.fail(str(e), pytrace=False)
    yield running
    running.stop()


def test_each_ready_replica_gets_its_delivered_and_dropped_fps(prom):
    source = PrometheusReplicaFps(prom.url, PODS)
    assert isinstance(source, ReplicaFpsSource)
    assert source.query("infer_fps") == \
        "max by (namespace, pod) (sum by (namespace, pod, instance) (avg_over_time(infer_fps[60s])))"
    samples = source.read(END_S)
    assert samples == [ReplicaSample(KEY, "de-spr-1", 14.0, 3.0, pod="retail/cams-a"),
                       ReplicaSample(KEY, "de-spr-2", 16.0, 2.0, pod="retail/cams-b")]


def test_a_replica_saturated_by_a_burst_reports_what_it_delivered_while_dropping(prom):
    """Not the minute's average (21.4 fps): with 1.6 fps dropped on average, that would read as a
    capacity of 21.4 (lowered to 20.3); what it delivered while dropping, 27 fps, is its capacity,
    and at the 27 fps planned that lowers nothing."""
    pods = Pods([record("cams-burst", "de-spr-1"), record("cams-slow", "de-spr-2")])
    source = PrometheusReplicaFps(prom.url, pods)
    assert source.while_dropping_query() == (
        "avg_over_time((sum by (namespace, pod) (infer_fps) and on (namespace, pod) "
        "(sum by (namespace, pod) (drop_fps) > 0.05 * sum by (namespace, pod) (infer_fps)))[60s:3s])")
    burst, slow = source.read(END_S)
    assert burst.pod == "retail/cams-burst" and burst.delivered_fps == pytest.approx(27.0)
    assert 1.0 < burst.drop_fps < 2.5                            # the window's average: the burst was short
    assert (slow.delivered_fps, slow.drop_fps) == (pytest.approx(12.0), pytest.approx(8.0))
    from wattwise.models.capacity_correction import ReplicaRate, lowered_capacities
    rates = [ReplicaRate(KEY, "spr-amx-tdx", x.delivered_fps, x.drop_fps) for x in (burst, slow)]
    # it delivered the 27 fps planned while dropping: overloaded, not slower (the average would
    # have lowered the capacity to 20.3); the slow replica lowers it
    assert lowered_capacities({(KEY, "spr-amx-tdx"): 27.0}, rates[:1]) == {}
    assert lowered_capacities({(KEY, "spr-amx-tdx"): 27.0}, [ReplicaRate(KEY, "spr-amx-tdx", 21.4, 1.6)])
    assert lowered_capacities({(KEY, "spr-amx-tdx"): 27.0}, rates[1:])[(KEY, "spr-amx-tdx")].capacity_fps == \
        pytest.approx(0.95 * 12.0)


def test_frame_counters_give_what_a_replica_delivered_while_dropping(prom):
    """The burst as counters at a 15 s scrape: each step reads the rate between the last two
    scrapes (irate over 60 s), so the saturated scrape reads 27 fps; a rate over the 3 s step
    would hold one sample and answer nothing (the window's 20.2 fps average would be taken)."""
    settings = ReplicaFpsSettings(fps_metric="frames_total", drop_metric="dropped_frames_total", counter=True)
    source = PrometheusReplicaFps(prom.url, Pods([record("cams-burst", "de-spr-1")]), settings)
    assert "irate(frames_total[60s])" in source.while_dropping_query()
    [burst] = source.read(END_S)
    assert burst.delivered_fps == pytest.approx(27.0)
    assert 1.0 < burst.drop_fps < 2.5                            # rate over the minute: the burst was short


def test_a_replica_ready_for_less_than_the_window_says_nothing_yet(prom):
    """Its 60 s gauges still average in its start-up (frames dropped while its model loaded): read
    as saturated, it would lower its pair's capacity for a day. Ready for the window: counted."""
    just = Pods([record("cams-slow", "de-spr-2", ready_since_s=END_S - 30)])
    assert PrometheusReplicaFps(prom.url, just).read(END_S) == []
    settled = Pods([record("cams-slow", "de-spr-2", ready_since_s=END_S - 60)])
    [slow] = PrometheusReplicaFps(prom.url, settled).read(END_S)
    assert (slow.delivered_fps, slow.drop_fps) == (pytest.approx(12.0), pytest.approx(8.0))


def test_a_pod_whose_target_changed_is_not_counted_twice(prom):
    """Its old and new target's series are both in the window, one after the other: 10 fps, not 20."""
    [moved] = PrometheusReplicaFps(prom.url, Pods([record("cams-moved", "de-spr-1")])).read(END_S)
    assert (moved.delivered_fps, moved.drop_fps) == (pytest.approx(10.0), 0.0)


def test_label_names_are_settings(prom):
    source = PrometheusReplicaFps(prom.url, PODS, ReplicaFpsSettings(pod_label="pod_name"))
    with pytest.raises(NoFpsData, match="'infer_fps' series with labels 'namespace' and 'pod_name'"):
        source.read(END_S)


def test_absent_series_unknown_pods_and_a_dead_prometheus_are_errors_not_samples(prom, tmp_path):
    with pytest.raises(NoFpsData, match="no 'infer_fps' series .* any of 3 ready WattWise pod"):
        PrometheusReplicaFps(prom.url, PODS).read(END_S - 3 * 3600)            # before the data
    with pytest.raises(NoFpsData, match="no 'dropped_frames_fps' series"):
        PrometheusReplicaFps(prom.url, PODS, ReplicaFpsSettings(drop_metric="dropped_frames_fps")).read(END_S)
    with pytest.raises(TelemetryError, match="pods are not known") as e:
        PrometheusReplicaFps(prom.url, Pods(PODS.records, known=False)).read(END_S)
    assert e.value.retryable
    assert PrometheusReplicaFps(prom.url, Pods([])).read(END_S) == []         # no replicas: nothing to say
    from tests.prometheus_fixture import free_port
    with pytest.raises(PrometheusUnavailable):
        PrometheusReplicaFps(f"http://127.0.0.1:{free_port()}", PODS).read(END_S)


def test_the_refresher_lowers_the_dropping_pairs_capacity_from_prometheus(prom):
    snap = snapshot()
    scaler = build_scaler(inventory=ScenarioInventory(snap), demand=recorded_demand(snap), carbon=ScenarioCarbon(snap),
                          catalogue_by_key=catalogue(snap), settings=settings_from_snapshot(snap, 15.0),
                          clock=lambda: END_S, registry_ttl_s=math.inf,
                          replica_fps=PrometheusReplicaFps(prom.url, PODS))
    for w in snap.workloads:
        scaler.registry.touch(parse_metadata(w.name, w.namespace, demo_metadata(w)))
    view = scaler.refresher.refresh_once().default_view
    assert not view.degraded
    [c] = view.inputs["capacity_corrections"]
    assert (c["workload"], c["node_class"]) == (KEY, "spr-amx-tdx")
    assert c["capacity_fps"] == pytest.approx(0.95 * 15.0) and c["corrected_from_fps"] > 15.0   # median of 14, 16
    w = next(w for w in view.snapshot.workloads if w.key == KEY)
    assert view.snapshot.model(w, view.snapshot.node_classes["spr-amx-tdx"]).capacity_fps == pytest.approx(14.25)
