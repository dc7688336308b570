"""CachedCarbonSource: TTL, stale-then-default fallback, backoff, bounded waits, background mode."""

import logging
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from carbon_fakes import FakeApi, Reply, iso  # noqa: E402

from wattwise.models.ports import CarbonIntensitySource, CarbonReading  # noqa: E402
from wattwise.telemetry.carbon.cached import CachedCarbonSource  # noqa: E402
from wattwise.telemetry.carbon.electricitymaps import ElectricityMapsProvider  # noqa: E402
from wattwise.telemetry.carbon.errors import CarbonProviderError  # noqa: E402
from wattwise.telemetry.carbon.static import StaticCarbonProvider  # noqa: E402

NOW_S = 1_700_000_000.0


class Clock:
    def __init__(self, t_s=NOW_S):
        self.t_s = t_s

    def __call__(self):
        return self.t_s


class Scripted:
    """A provider answering from a script: numbers become readings, exceptions are raised."""

    name = "scripted"
    signal = "marginal"

    def __init__(self, *outcomes, gate=None):
        self.outcomes = list(outcomes)
        self.calls = 0
        self.threads = []
        self.gate = gate

    def fetch(self, zone, now_s):
        self.calls += 1
        self.threads.append(threading.current_thread().name)
        if self.gate is not None:
            self.gate.wait(5.0)
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return CarbonReading(zone=zone, g_per_kwh=outcome, at_s=now_s - 60, source=self.name,
                             signal=self.signal, forecast=((now_s + 3600, outcome + 1),))


def down(retryable=True, **kw):
    return CarbonProviderError("scripted", "HTTP 503 from upstream", retryable=retryable, status=503, **kw)


def source(provider, clock, **kw):
    kw.setdefault("ttl_s", 300.0)
    kw.setdefault("default_g_per_kwh", 700.0)
    return CachedCarbonSource(provider, clock=clock, **kw)


def test_implements_the_port():
    with source(Scripted(100.0), Clock()) as carbon:
        assert isinstance(carbon, CarbonIntensitySource)


def test_fresh_then_cached_within_ttl_then_refreshed():
    clock, provider = Clock(), Scripted(100.0, 120.0)
    with source(provider, clock) as carbon:
        first = carbon.intensity("DE", NOW_S)
        assert (first.status, first.g_per_kwh, first.signal) == ("fresh", 100.0, "marginal")
        assert first.forecast == ((NOW_S + 3600, 101.0),)

        clock.t_s += 299
        cached = carbon.intensity("DE", clock.t_s)
        assert (cached.status, cached.g_per_kwh, cached.age_s) == ("cached", 100.0, 299.0)
        assert cached.trustworthy and provider.calls == 1

        clock.t_s += 1
        refreshed = carbon.intensity("DE", clock.t_s)
        assert (refreshed.status, refreshed.g_per_kwh, provider.calls) == ("fresh", 120.0, 2)
        assert carbon.stats()["fetches"] == 2


def test_zones_are_cached_separately():
    provider = Scripted(100.0)
    with source(provider, Clock()) as carbon:
        carbon.intensity("DE", NOW_S)
        carbon.intensity("FR", NOW_S)
        carbon.intensity("DE", NOW_S)
        assert provider.calls == 2


def test_failure_serves_stale_with_age_then_default_after_max_stale(caplog):
    clock = Clock()
    provider = Scripted(100.0, down())
    with source(provider, clock, max_stale_s=3600.0, failure_backoff_s=0.0) as carbon:
        carbon.intensity("DE", NOW_S)
        clock.t_s += 400
        with caplog.at_level(logging.WARNING, logger="wattwise.telemetry.carbon.cached"):
            stale = carbon.intensity("DE", clock.t_s)
        assert (stale.status, stale.g_per_kwh, stale.age_s) == ("stale", 100.0, 400.0)
        assert not stale.trustworthy
        assert "HTTP 503" in stale.error and "1 failure(s) in a row" in stale.error
        assert "fetched 400 s ago" in stale.error
        assert any("scripted failed for zone DE" in r.getMessage() for r in caplog.records)

        clock.t_s += 3000
        still_stale = carbon.intensity("DE", clock.t_s)
        assert (still_stale.status, still_stale.age_s) == ("stale", 3400.0)
        assert "2 failure(s) in a row" in still_stale.error

        clock.t_s += 201
        default = carbon.intensity("DE", clock.t_s)
        assert (default.status, default.g_per_kwh, default.at_s) == ("default", 700.0, clock.t_s)
        assert default.signal == "marginal" and default.source == "scripted"
        assert "beyond max_stale_s" in default.error and "default 700 g/kWh" in default.error
        assert carbon.stats()["failures"] == 3


def test_never_fetched_serves_the_default_and_never_raises():
    with source(Scripted(down(retryable=False)), Clock()) as carbon:
        reading = carbon.intensity("DE", NOW_S)
    assert (reading.status, reading.g_per_kwh) == ("default", 700.0)
    assert "HTTP 503" in reading.error and "(not retryable)" in reading.error


def test_a_provider_bug_is_counted_logged_and_shown(caplog):
    with source(Scripted(KeyError("carbonIntensity")), Clock()) as carbon:
        with caplog.at_level(logging.WARNING):
            reading = carbon.intensity("DE", NOW_S)
        assert reading.status == "default" and "unexpected KeyError" in reading.error
        assert carbon.stats()["failures"] == 1
    assert any(r.exc_info for r in caplog.records)


def test_backoff_after_failure_then_retry():
    clock = Clock()
    provider = Scripted(down(), down(), 90.0)
    with source(provider, clock, failure_backoff_s=10.0) as carbon:
        carbon.intensity("DE", NOW_S)
        clock.t_s += 9
        assert carbon.intensity("DE", clock.t_s).status == "default"
        assert provider.calls == 1  # within the backoff: no new request
        clock.t_s += 1
        carbon.intensity("DE", clock.t_s)
        assert provider.calls == 2
        clock.t_s += 19  # second failure doubles the backoff to 20 s
        carbon.intensity("DE", clock.t_s)
        assert provider.calls == 2
        clock.t_s += 1
        assert carbon.intensity("DE", clock.t_s).status == "fresh"
        assert provider.calls == 3


def test_retry_after_is_respected():
    clock = Clock()
    provider = Scripted(down(retry_after_s=120.0), 90.0)
    with source(provider, clock, failure_backoff_s=1.0) as carbon:
        carbon.intensity("DE", NOW_S)
        clock.t_s += 119
        carbon.intensity("DE", clock.t_s)
        assert provider.calls == 1
        clock.t_s += 1
        assert carbon.intensity("DE", clock.t_s).g_per_kwh == 90.0


def test_a_default_from_the_provider_stays_marked_default_when_cached():
    with source(StaticCarbonProvider({}, default_g_per_kwh=450.0), Clock()) as carbon:
        carbon.intensity("PL", NOW_S)
        again = carbon.intensity("PL", NOW_S)
    assert (again.status, again.g_per_kwh) == ("default", 450.0)


def test_a_slow_provider_does_not_block_and_its_late_answer_is_kept():
    gate = threading.Event()
    clock = Clock()
    provider = Scripted(100.0, gate=gate)
    with source(provider, clock, refresh_timeout_s=0.2) as carbon:
        started = time.monotonic()
        first = carbon.intensity("DE", NOW_S)
        assert time.monotonic() - started < 0.6
        assert first.status == "default" and "no answer within 0.2 s" in first.error

        started = time.monotonic()
        second = carbon.intensity("DE", NOW_S)  # the fetch is still running: no second wait
        assert time.monotonic() - started < 0.1
        assert second.status == "default" and provider.calls == 1
        assert carbon.stats()["timeouts"] == 1

        gate.set()
        deadline = time.monotonic() + 2.0
        while carbon.intensity("DE", NOW_S).status != "cached" and time.monotonic() < deadline:
            time.sleep(0.01)
        late = carbon.intensity("DE", NOW_S)
        assert (late.status, late.g_per_kwh) == ("cached", 100.0)


def test_hanging_http_server_does_not_block_beyond_the_timeout():
    latest = {"zone": "DE", "carbonIntensity": 250, "datetime": iso(NOW_S - 600),
              "updatedAt": iso(NOW_S - 700), "emissionFactorType": "lifecycle", "isEstimated": False}
    clock = Clock()
    with FakeApi() as api:
        api.on("/v3/carbon-intensity/latest", Reply(body=latest), Reply(body=latest, delay_s=5.0))
        provider = ElectricityMapsProvider("t", base_url=api.url, timeout_s=5.0, with_forecast=False)
        with source(provider, clock, refresh_timeout_s=0.3) as carbon:
            assert carbon.intensity("DE", NOW_S).g_per_kwh == 250.0
            clock.t_s += 600
            started = time.monotonic()
            reading = carbon.intensity("DE", clock.t_s)
            assert time.monotonic() - started < 0.8
    assert (reading.status, reading.g_per_kwh, reading.age_s) == ("stale", 250.0, 600.0)
    assert "no answer within 0.3 s" in reading.error


def test_background_mode_answers_from_memory_only():
    clock = Clock()
    provider = Scripted(100.0)
    with source(provider, clock, background_interval_s=0.02, zones=["DE"]) as carbon:
        carbon.start()
        deadline = time.monotonic() + 2.0
        while provider.calls == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        reading = carbon.intensity("DE", NOW_S)
        assert (reading.status, reading.g_per_kwh) == ("cached", 100.0)

        pending = carbon.intensity("FR", NOW_S)  # unknown zone: default now, fetched soon
        assert pending.status == "default" and "background refresh pending" in pending.error
        deadline = time.monotonic() + 2.0
        while carbon.intensity("FR", NOW_S).status != "cached" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert carbon.intensity("FR", NOW_S).g_per_kwh == 100.0
        assert provider.calls == 2  # within the TTL the thread does not refetch
    assert all(name.startswith("carbon-refresh") for name in provider.threads)


def test_background_refresh_due_respects_ttl_and_failures():
    clock = Clock()
    provider = Scripted(100.0, down(), 130.0)
    with source(provider, clock, background_interval_s=60.0, failure_backoff_s=5.0,
                zones=["DE"]) as carbon:
        assert carbon.refresh_due() == 1
        assert carbon.refresh_due() == 0  # within TTL
        clock.t_s += 300
        assert carbon.refresh_due() == 0  # failed
        stale = carbon.intensity("DE", clock.t_s)
        assert stale.status == "stale" and stale.age_s == 300.0
        clock.t_s += 5
        assert carbon.refresh_due() == 1
        assert carbon.intensity("DE", clock.t_s).g_per_kwh == 130.0


@pytest.mark.parametrize("kw", [dict(ttl_s=-1), dict(refresh_timeout_s=0), dict(default_g_per_kwh=float("nan")),
                                dict(background_interval_s=0)])
def test_bad_parameters_are_refused(kw):
    with pytest.raises(ValueError):
        source(Scripted(1.0), Clock(), **kw)
