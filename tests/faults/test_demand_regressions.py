"""Regression (issue 15, faults): a Prometheus that answers 200 with a result that is not a vector
of [time, "number"] samples made `PromQLDemand.read` raise (TypeError, KeyError, ValueError out of
the client's parsing) instead of returning an untrustworthy reading, so every refresh of
`wattwise serve` failed with a traceback: the plan froze (nodes deleted meanwhile stayed in it), and
the degraded reason ("plan refresh failed") named neither Prometheus nor the workload. Fast: an
aiohttp stand-in, no `wattwise serve` (tests/faults/test_prometheus_faults.py runs that)."""

from __future__ import annotations

import pytest

from tests.faults.stand_ins import GARBAGE, PrometheusStandIn
from wattwise.scaler.demand import PromQLDemand

NOT_SAMPLES = {
    "result-a-string": ({"status": "success", "data": {"resultType": "vector", "result": "48"}}, "TypeError"),
    "result-null": ({"status": "success", "data": {"resultType": "vector", "result": None}}, "TypeError"),
    "sample-without-value": ({"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}}]}},
                             "KeyError"),
    "value-a-word": ({"status": "success", "data": {"resultType": "vector",
                                                    "result": [{"metric": {}, "value": [1, "many"]}]}}, "ValueError"),
    "value-too-short": ({"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1]}]}},
                        "ValueError"),
    "sample-a-number": ({"status": "success", "data": {"resultType": "vector", "result": [48]}}, "TypeError"),
}


@pytest.fixture(scope="module")
def demand():
    prom = PrometheusStandIn(48).start()
    prom.mode = GARBAGE
    port = PromQLDemand(prom.url, timeout_s=2.0)
    yield prom, port
    port.close()
    prom.stop()


@pytest.mark.parametrize("case", list(NOT_SAMPLES))
def test_a_result_that_is_not_samples_is_an_untrustworthy_reading_not_an_exception(demand, case):
    prom, port = demand
    prom.garbage, error = NOT_SAMPLES[case]
    reading = port.read("sum(wattwise_active_streams)", 1_700_000_000.0)
    assert not reading.ok and reading.value is None
    assert reading.note.startswith(f"Prometheus at {prom.url}: instant query returned something that is not a "
                                   f"Prometheus API answer ({error}"), reading.note
