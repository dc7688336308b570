"""Carbon intensity from a Prometheus gauge via the HTTP API instant query."""

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from carbon_fakes import FakeApi, Reply  # noqa: E402

from wattwise.telemetry.carbon.errors import CarbonProviderError  # noqa: E402
from wattwise.telemetry.carbon.prometheus import PrometheusCarbonProvider  # noqa: E402

NOW_S = 1_700_000_000.0
QUERY = "grid_carbon_intensity_g_per_kwh"


def vector(*series):
    return {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"__name__": QUERY, **labels}, "value": [at_s, value]} for labels, at_s, value in series]}}


@pytest.fixture
def api():
    with FakeApi() as fake:
        yield fake


def provider(api, **kw):
    return PrometheusCarbonProvider(api.url, QUERY, timeout_s=2.0, **kw)


def test_the_series_of_the_zone_is_chosen(api):
    api.on("/api/v1/query", Reply(body=vector(({"zone": "FR"}, NOW_S - 15, "55.5"),
                                              ({"zone": "DE"}, NOW_S - 15, "312.25"))))

    reading = provider(api).fetch("DE", NOW_S)

    assert (reading.g_per_kwh, reading.at_s, reading.source) == (312.25, NOW_S - 15, "prometheus")
    assert api.calls("/api/v1/query")[0].params == {"query": QUERY, "time": "1700000000.000"}


def test_zone_label_and_signal_are_settings(api):
    api.on("/api/v1/query", Reply(body=vector(({"region": "DE"}, NOW_S, "300"),
                                              ({"region": "DE"}, NOW_S - 60, "350"))))
    reading = provider(api, zone_label="region", signal="marginal").fetch("DE", NOW_S)
    assert (reading.g_per_kwh, reading.signal) == (300.0, "marginal")  # newest sample wins


def test_bearer_token_is_sent(api):
    api.on("/api/v1/query", Reply(body=vector(({"zone": "DE"}, NOW_S, "1"))))
    provider(api, bearer_token="tok").fetch("DE", NOW_S)
    assert api.calls("/api/v1/query")[0].headers["authorization"] == "Bearer tok"


@pytest.mark.parametrize("reply, retryable, word", [
    (Reply(400, {"status": "error", "errorType": "bad_data",
                 "error": "invalid parameter \"query\": 1:6: parse error: unexpected end of input"}),
     False, "bad_data: invalid parameter"),
    (Reply(503, {"status": "error", "errorType": "timeout", "error": "query timed out in expression evaluation"}),
     True, "timeout: query timed out"),
    (Reply(body=vector(({"zone": "FR"}, NOW_S, "55")),), True, "no series with zone='DE'"),
    (Reply(body=vector(({"zone": "DE"}, NOW_S, "NaN"))), False, "not a finite"),
    (Reply(body={"status": "success", "data": {"resultType": "matrix", "result": []}}), False,
     "instant vector"),
    (Reply(body="<html>"), True, "malformed JSON"),
])
def test_errors(api, reply, retryable, word):
    api.on("/api/v1/query", reply)
    with pytest.raises(CarbonProviderError, match=word) as caught:
        provider(api).fetch("DE", NOW_S)
    assert caught.value.retryable is retryable


def test_against_a_real_prometheus(prometheus_factory):
    """The same adapter against a real Prometheus (fixture from tests/telemetry/conftest.py)."""
    t0_s = int(NOW_S // 3600 * 3600) - 3 * 3600
    while t0_s + 3600 > time.time() - 3600:  # promtool needs samples well in the past
        t0_s -= 24 * 3600
    lines = ["# TYPE grid_carbon_intensity_g_per_kwh gauge"]
    for i in range(0, 3600, 60):
        lines.append(f'grid_carbon_intensity_g_per_kwh{{zone="DE"}} {300 + i / 60} {t0_s + i}')
        lines.append(f'grid_carbon_intensity_g_per_kwh{{zone="FR"}} 55 {t0_s + i}')
    prom = prometheus_factory("\n".join(lines) + "\n# EOF\n")
    carbon = PrometheusCarbonProvider(prom.url, QUERY, timeout_s=5.0)

    reading = carbon.fetch("DE", t0_s + 630)

    assert (reading.g_per_kwh, reading.at_s) == (310.0, t0_s + 630)
    with pytest.raises(CarbonProviderError, match="no series with zone='PL'"):
        carbon.fetch("PL", t0_s + 630)
    with pytest.raises(CarbonProviderError, match="bad_data") as caught:
        PrometheusCarbonProvider(prom.url, "sum(", timeout_s=5.0).fetch("DE", t0_s + 630)
    assert caught.value.status == 400 and not caught.value.retryable
