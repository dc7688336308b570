"""Live "now" readings, and Prometheus dying under the adapters."""

import time

import pytest

from wattwise import cli
from wattwise.telemetry.prometheus import (PrometheusClient, PrometheusPowerFpsSource, PrometheusUnavailable,
                                           SourceSettings)
from tests.telemetry.synthetic import Faults, generate

pytestmark = pytest.mark.slow


@pytest.fixture
def loaded(prometheus_factory):
    end_s = (time.time() - 3600) // 15 * 15
    text, cluster = generate("0.10", end_s - 3600, 3600, Faults())
    return prometheus_factory(text), cluster


def test_current_fps_and_node_power_report_age(loaded):
    prom, cluster = loaded
    source = PrometheusPowerFpsSource(PrometheusClient(prom.url, timeout_s=5), SourceSettings(stale_after_s=120))
    now_s = cluster.end_s + 30
    fps = source.current_fps(now_s)
    assert set(fps) == {"video/detector", "video/classifier"}
    detector = fps["video/detector"]
    expected = sum(p["delivered"][-1] + p["dropped"][-1] for p in cluster.pods if p["workload"] == "detector")
    assert detector.value == pytest.approx(expected, rel=1e-6)
    assert detector.pods == 3 and detector.age_s == pytest.approx(30) and not detector.stale
    later = source.current_fps(cluster.end_s + 200)  # within the 5-minute lookback, but old
    assert later["video/detector"].stale and later["video/detector"].age_s == pytest.approx(200)
    assert all(r.age_s == pytest.approx(30) for r in source.node_power_now(now_s).values())
    power = source.node_power_now(cluster.end_s)
    assert set(power) == {"node-a1", "node-a2", "node-b1", "vm-1"}
    assert all(r.age_s == 0 and not r.stale for r in power.values())
    assert power["vm-1"].value == pytest.approx(5.0) and power["node-b1"].value > 45


def test_killing_prometheus_mid_fetch_is_reported_not_a_crash(loaded, tmp_path, capsys):
    prom, cluster = loaded
    client = PrometheusClient(prom.url, timeout_s=5, retries=1, backoff_s=0, max_points=40)
    seen = []

    def progress(done, total):
        seen.append((done, total))
        if done == 3:
            prom.kill()

    source = PrometheusPowerFpsSource(client, progress=progress)
    with pytest.raises(PrometheusUnavailable, match="unreachable") as e:
        source.samples(cluster.start_s, cluster.end_s, 15)
    assert e.value.retryable
    assert seen[-1][0] == 3 and seen[-1][1] > 3           # it died part-way, as intended
    with pytest.raises(PrometheusUnavailable):
        source.current_fps(cluster.end_s)
    rc = cli.main(["fit", "--prometheus", prom.url, "--since", "1h", "--retries", "0", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith("wattwise fit: error: Prometheus at") and "Connection refused" in err[-1]
