import pytest

from wattwise.telemetry.prometheus import promql
from wattwise.telemetry.prometheus.client import plan_chunks
from wattwise.telemetry.prometheus.errors import NoKeplerData
from wattwise.telemetry.prometheus.schema import KeplerSchema, detect_schema, has_gpu_metrics


def test_pod_power_rates_one_zone_then_sums_v010():
    q = promql.pod_power_w(KeplerSchema.V0_10, 60)
    assert q == ('sum by (pod_namespace, pod_name, node_name) '
                 '(rate(kepler_pod_cpu_joules_total{zone="package"}[60s]))')


def test_pod_power_v09_uses_dynamic_package_counter():
    q = promql.pod_power_w(KeplerSchema.V0_9, 60)
    assert "rate(kepler_container_package_joules_total{mode=\"dynamic\"}[60s])" in q
    assert q.startswith("sum by (container_namespace, pod_name, instance)")


def test_gpu_power_has_no_zone():
    assert "zone" not in promql.pod_power_w(KeplerSchema.V0_10, 60, gpu=True)
    assert "kepler_pod_gpu_joules_total" in promql.pod_power_w(KeplerSchema.V0_10, 60, gpu=True)


def test_node_power_v09_sums_modes_of_package_counter():
    assert promql.node_power_w(KeplerSchema.V0_9, 60) == \
        "sum by (instance) (rate(kepler_node_package_joules_total[60s]))"


@pytest.mark.parametrize("scrape_s, step_s, window_s", [(15, 15, 60), (30, 15, 120), (15, 300, 300), (10, 7, 40)])
def test_rate_window_is_at_least_four_scrapes_and_one_step(scrape_s, step_s, window_s):
    assert promql.rate_window_s(scrape_s, step_s) == window_s


def test_fps_gauge_is_averaged_and_counter_is_rated():
    assert promql.pod_fps("infer_fps", 60) == \
        "max by (namespace, pod) (sum by (namespace, pod, instance) (avg_over_time(infer_fps[60s])))"
    assert promql.pod_fps("frames_total", 60, counter=True) == \
        "max by (namespace, pod) (sum by (namespace, pod, instance) (rate(frames_total[60s])))"


def test_ksm_label_name_sanitises_like_kube_state_metrics():
    assert promql.ksm_label_name("feature.node.kubernetes.io/cpu-security.tdx.enabled") == \
        "label_feature_node_kubernetes_io_cpu_security_tdx_enabled"
    assert promql.pod_labels("app.kubernetes.io/name", 3600).startswith(
        "max by (namespace, pod, label_app_kubernetes_io_name) (label_replace(label_replace(max_over_time("
        "kube_pod_labels{label_app_kubernetes_io_name!=\"\"}[3600s]), \"namespace\", \"$1\", \"exported_namespace\"")


def test_zone_value_cannot_break_out_of_quotes():
    with pytest.raises(ValueError):
        promql.pod_power_w(KeplerSchema.V0_10, 60, zone='package"} or vector(1) #')


def test_detect_schema():
    assert detect_schema(["kepler_pod_cpu_joules_total", "up"]) is KeplerSchema.V0_10
    assert detect_schema(["kepler_container_package_joules_total"]) is KeplerSchema.V0_9
    assert detect_schema(["kepler_container_joules_total", "kepler_node_cpu_joules_total"]) is KeplerSchema.V0_10
    assert has_gpu_metrics(KeplerSchema.V0_10, ["kepler_pod_gpu_joules_total"])
    with pytest.raises(NoKeplerData, match="kepler_exporter_build_info"):
        detect_schema(["kepler_exporter_build_info", "up"])


def test_chunks_cover_every_step_once_and_stay_under_the_limit():
    chunks = plan_chunks(0, 7 * 86400, 15, max_points=10_000)
    points = [round((b - a) / 15) + 1 for a, b in chunks]
    assert max(points) <= 10_000 and sum(points) == 7 * 86400 // 15 + 1
    assert all(a2 == b1 + 15 for (_, b1), (a2, _) in zip(chunks, chunks[1:]))
    assert chunks[0][0] == 0 and chunks[-1][1] == 7 * 86400
    assert plan_chunks(100, 100, 15) == [(100, 100)]
    with pytest.raises(ValueError):
        plan_chunks(10, 0, 15)


def test_pod_power_can_be_limited_to_pods_reporting_fps():
    q = promql.pod_power_w(KeplerSchema.V0_9, 60, only_pods_of=("infer_fps", "namespace", "pod"))
    assert q.startswith("sum by (container_namespace, pod_name, instance) (rate(")
    assert " and on (container_namespace, pod_name) label_replace(label_replace(group by (namespace, pod) " \
           "(last_over_time(infer_fps[3600s])), \"container_namespace\", \"$1\", \"namespace\", \"(.*)\"), " \
           "\"pod_name\", \"$1\", \"pod\", \"(.*)\")" in q


def test_window_samples_count_the_most_complete_series_of_each_pod():
    q = promql.pod_window_samples(KeplerSchema.V0_9, 60)
    assert q == ('max by (container_namespace, pod_name, instance) '
                 '(count_over_time(kepler_container_package_joules_total{mode="dynamic"}[60s]))')


def test_partial_windows_are_those_holding_fewer_samples_than_most():
    import numpy as np
    import pandas as pd

    from wattwise.telemetry.prometheus.source import partial_windows

    # a pod starting (2, 3 samples), then full windows of 4 (or 5, a sample on the edge), ending (3, 2)
    counts = pd.Series([2, 3, 4, 4, 5, 4, 4, 4, 5, 4, 3, 2, np.nan])
    assert partial_windows(counts).tolist() == [True, True] + [False] * 8 + [True, True, False]
    # the median, not the scrape interval setting, says what full is: 2 samples per window at a 30 s scrape
    assert not partial_windows(pd.Series([2.0] * 10)).any()
    assert not partial_windows(pd.Series([], dtype=float)).any()
