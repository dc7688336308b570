"""Prometheus dying under the adapters."""

import time

import pytest

from wattwise import cli
from wattwise.telemetry.prometheus import PrometheusClient, PrometheusPowerFpsSource, PrometheusUnavailable
from tests.telemetry.synthetic import Faults, generate

pytestmark = pytest.mark.slow


@pytest.fixture
def loaded(prometheus_factory):
    end_s = (time.time() - 3600) // 15 * 15
    text, cluster = generate("0.10", end_s - 3600, 3600, Faults())
    return prometheus_factory(text), cluster


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
        source.discover(cluster.start_s, cluster.end_s)
    rc = cli.main(["fit", "--prometheus", prom.url, "--since", "1h", "--retries", "0", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith("wattwise fit: error: Prometheus at") and "Connection refused" in err[-1]
