"""Every failure mode of the client becomes one typed error of ours."""

import time

import numpy as np
import pytest

from tests.prometheus_fixture import free_port
from tests.telemetry.fake_http import serve
from wattwise.telemetry.prometheus import (PrometheusClient, PrometheusQueryError, PrometheusTimeout,
                                           PrometheusUnavailable, TelemetryError)


def test_connection_refused_is_unavailable_and_retryable():
    client = PrometheusClient(f"http://127.0.0.1:{free_port()}", timeout_s=2, retries=1, backoff_s=0)
    with pytest.raises(PrometheusUnavailable, match="Connection refused") as e:
        client.instant("up")
    assert e.value.retryable
    assert client.stats.by_kind == {"PrometheusUnavailable": 1}


def test_read_timeout_is_a_timeout_and_not_retried():
    with serve(delay_s=1.5) as (url, calls):
        client = PrometheusClient(url, timeout_s=0.3, retries=3, backoff_s=0)
        t0 = time.monotonic()
        with pytest.raises(PrometheusTimeout, match="longer than 0.3s") as e:
            client.range("up", 0, 60, 15)
        assert time.monotonic() - t0 < 1.4
        assert e.value.retryable and len(calls) == 1


def test_retry_exhaustion_on_503_is_bounded():
    with serve(status=503, body=b'{"status":"error","error":"overloaded"}') as (url, calls):
        client = PrometheusClient(url, timeout_s=2, retries=2, backoff_s=0)
        with pytest.raises(PrometheusUnavailable, match="bounded retries"):
            client.instant("up")
        assert len(calls) == 3  # first try + 2 retries


def test_http_400_is_a_query_error_with_prometheus_reason(prometheus_factory):
    prom = prometheus_factory(None)
    client = PrometheusClient(prom.url, timeout_s=5)
    with pytest.raises(PrometheusQueryError, match="HTTP 400.*parse error") as e:
        client.instant("sum by (")
    assert e.value.status == 400 and not e.value.retryable


def test_not_prometheus_is_a_query_error():
    with serve(status=200, body=b"<html>hello</html>", content_type="text/html") as (url, _):
        with pytest.raises(PrometheusQueryError, match="not a Prometheus API answer"):
            PrometheusClient(url, timeout_s=2).instant("up")


def test_bad_url_is_rejected_up_front():
    with pytest.raises(TelemetryError, match="http:// or https://"):
        PrometheusClient("localhost:9090")


def test_chunked_range_equals_one_query(prometheus_factory):
    end_s = (time.time() - 3600) // 15 * 15
    ts = end_s - 15 * np.arange(400)[::-1]
    text = "# TYPE g gauge\n" + "".join(f'g{{a="x"}} {i} {t:.0f}\n' for i, t in enumerate(ts)) + "# EOF\n"
    prom = prometheus_factory(text)
    whole = PrometheusClient(prom.url).range("g", ts[0], ts[-1], 15)
    chunked_client = PrometheusClient(prom.url, max_points=37)
    chunked = chunked_client.range("g", ts[0], ts[-1], 15)
    assert chunked_client.stats.requests == 11  # ceil(400 / 37)
    assert len(whole) == len(chunked) == 1
    np.testing.assert_array_equal(whole[0].t_s, chunked[0].t_s)
    np.testing.assert_array_equal(chunked[0].values, np.arange(400.0))
