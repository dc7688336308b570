"""Every failure mode of the client becomes one typed error of ours."""

import time

import numpy as np
import pytest

from tests.prometheus_fixture import free_port
from tests.telemetry.fake_http import serve
from wattwise.telemetry.prometheus import (PrometheusClient, PrometheusPartialAnswer, PrometheusQueryError,
                                           PrometheusTimeout, PrometheusUnavailable, TelemetryError)


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


def test_retry_exhaustion_on_502_is_bounded():
    with serve(status=502, body=b"Bad Gateway") as (url, calls):
        client = PrometheusClient(url, timeout_s=2, retries=2, backoff_s=0)
        with pytest.raises(PrometheusUnavailable, match="bounded retries"):
            client.instant("up")
        assert len(calls) == 3  # first try + 2 retries


def test_a_503_that_is_not_a_query_timeout_is_unavailable_and_not_retried():
    with serve(status=503, body=b'{"status":"error","errorType":"unavailable","error":"overloaded"}') as (url, calls):
        client = PrometheusClient(url, timeout_s=2, retries=2, backoff_s=0)
        with pytest.raises(PrometheusUnavailable, match="refused with HTTP 503 \\(overloaded\\)") as e:
            client.instant("up")
        assert e.value.retryable and len(calls) == 1


def test_prometheus_s_own_query_timeout_is_a_timeout_and_not_retried(prometheus_factory):
    """Prometheus answers a query that ran past its evaluation timeout with 503 and errorType
    timeout: retrying it would only add to the load that made it slow."""
    end_s = int(time.time()) // 15 * 15 - 3 * 3600         # promtool writes only blocks in the past
    samples = "\n".join(f"x_total {t - end_s} {t}" for t in range(end_s - 6 * 3600, end_s + 1, 15))
    prom = prometheus_factory(f"# TYPE x counter\n{samples}\n# EOF\n", extra_args=("--query.timeout=1ms",))
    client = PrometheusClient(prom.url, timeout_s=20, retries=3, backoff_s=0)   # capped by the flag's 1 ms
    with pytest.raises(PrometheusTimeout, match="hit Prometheus's query timeout \\(query timed out") as e:
        client.instant("count(count_over_time(x_total[6h:1s]))", at_s=end_s)
    assert e.value.retryable and client.stats.requests == 1
    assert client.stats.by_kind == {"PrometheusTimeout": 1}


def test_an_answer_with_warnings_is_partial_not_the_whole():
    """Thanos (or a remote read) answers what it could collect, and says so in `warnings`: a sum of
    FPS over the pods answered would under-state demand, so it is refused as partial."""
    body = (b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{"pod":"a"},'
            b'"value":[1700000000,"12"]}]},"warnings":["partial response: store 10.0.0.3:10901 unavailable"],'
            b'"infos":["PromQL info: metric might not be a counter"]}')
    with serve(status=200, body=body) as (url, calls):
        client = PrometheusClient(url, timeout_s=2, retries=2, backoff_s=0)
        with pytest.raises(PrometheusPartialAnswer, match="answered with warnings, so its data may be partial: "
                                                          "partial response: store 10.0.0.3:10901 unavailable") as e:
            client.instant("sum(infer_fps)")
        assert e.value.retryable and len(calls) == 1
    infos_only = body.replace(b'"warnings":["partial response: store 10.0.0.3:10901 unavailable"],', b"")
    with serve(status=200, body=infos_only) as (url, _):
        [series] = PrometheusClient(url, timeout_s=2).instant("sum(infer_fps)")
        assert series.values.tolist() == [12.0]


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
