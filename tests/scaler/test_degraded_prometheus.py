"""A real Prometheus killed mid-run: answers continue, held at the last trustworthy plan and
marked degraded (metrics and logs); they recover by themselves when Prometheus is back. Data
that goes stale (no sample within Prometheus's lookback) is held the same way."""

from __future__ import annotations

import logging
import subprocess
import time
import urllib.request

import pytest

from tests.prometheus_fixture import prometheus_or_fail
from tests.scaler.helpers import keda_poll, ref, start_live, stub_for
from wattwise.scaler.demand import PromQLDemand

QUERY = 'sum(wattwise_active_streams{namespace="retail",workload="checkout-cams"})'
STEP_S = 15


class Clock:
    def __init__(self, now_s):
        self.now_s = now_s

    def __call__(self):
        return self.now_s


def _openmetrics(t0: int) -> str:
    """48 streams for 20 min, 20 streams for 15 min, then nothing (a dead exporter)."""
    lines = ["# TYPE wattwise_active_streams gauge"]
    for t in range(t0, t0 + 35 * 60, STEP_S):
        value = 48 if t < t0 + 20 * 60 else 20
        lines.append(f'wattwise_active_streams{{namespace="retail",workload="checkout-cams",pod="gw-1"}} {value} {t}')
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def _restart(prom):
    """Start Prometheus again on the same address and storage (as a restarted pod would)."""
    prom.process = subprocess.Popen(prom.process.args, stdout=open(prom.workdir / "prometheus2.log", "wb"),
                                    stderr=subprocess.STDOUT, cwd=prom.workdir)
    for _ in range(300):
        try:
            with urllib.request.urlopen(f"{prom.url}/-/ready", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    pytest.fail("prometheus did not come back")


def _value(stub, so):
    _, metrics, active = keda_poll(stub, so)
    return metrics.metricValues[0].metricValueFloat, active.result


def test_prometheus_killed_mid_run(tmp_path, caplog):
    t0 = (int(time.time()) // 3600 - 4) * 3600
    prom = prometheus_or_fail(_openmetrics(t0), tmp_path / "prom")
    clock = Clock(t0 + 10 * 60)
    demand = PromQLDemand(prom.url, timeout_s=3.0, retries=0)
    # the clock jumps minutes between KEDA's polls here, so keep registrations for the whole test
    scaler = start_live(demand, clock=clock, start_refresher=False, interval_s=STEP_S, registry_ttl_s=7200)
    refresher, metrics = scaler.scaler.refresher, scaler.scaler.metrics.registry
    channel, stub = stub_for(scaler.grpc_port)
    so = ref("checkout", "retail", workload="checkout-cams", query=QUERY)
    try:
        stub.GetMetricSpec(so, timeout=5)
        refresher.refresh_once()
        busy, active = _value(stub, so)
        assert active and busy > 0
        assert metrics.get_sample_value("wattwise_degraded") == 0

        with caplog.at_level(logging.INFO, logger="wattwise.scaler.refresher"):
            prom.kill()
            clock.now_s += STEP_S
            refresher.refresh_once()
            assert _value(stub, so) == (busy, True)                 # answered, held
            assert metrics.get_sample_value("wattwise_degraded") == 1
            assert metrics.get_sample_value("wattwise_demand_held", {"workload": "retail/checkout-cams"}) == 1
            assert metrics.get_sample_value("wattwise_telemetry_staleness_seconds",
                                            {"workload": "retail/checkout-cams"}) == STEP_S
            assert any("degraded" in r.getMessage() and "unreachable" in r.getMessage() for r in caplog.records)

            clock.now_s = t0 + 25 * 60                              # demand fell meanwhile; nobody can tell
            refresher.refresh_once()
            assert _value(stub, so) == (busy, True)                 # never scaled down on missing data

            _restart(prom)
            clock.now_s += STEP_S
            refresher.refresh_once()
            assert metrics.get_sample_value("wattwise_degraded") == 0
            assert any("recovered" in r.getMessage() for r in caplog.records)
            # the held level stays in the scale-down window (5 min) like any sample: one reading after
            # an outage longer than the window does not scale down at once
            assert _value(stub, so) == (busy, True)
            clock.now_s += 300 + STEP_S
            refresher.refresh_once()
            quiet, active = _value(stub, so)
            assert active and 0 < quiet < busy                      # then it follows the data again

            clock.now_s = t0 + 50 * 60                              # the exporter died: data went stale
            refresher.refresh_once()
            assert _value(stub, so) == (quiet, True)
            assert metrics.get_sample_value("wattwise_degraded") == 1
            assert "no series" in " ".join(refresher.state().degraded_reasons)
    finally:
        channel.close()
        scaler.stop(1.0)
        demand.close()
        prom.stop()


def test_a_hung_prometheus_costs_one_timeout_per_refresh_not_one_per_query():
    """Prometheus accepts connections and never answers: the first query times out, the others of
    that refresh are not asked (each would wait its own timeout, so at 100 workloads a refresh
    took minutes and nothing was published meanwhile); every workload is held, said so."""
    from tests.scaler.helpers import snapshot
    from tests.telemetry.fake_http import serve
    from wattwise.scaler.sources import demand_query

    queries = {demand_query(w) for w in snapshot().workloads}
    assert len(queries) >= 4
    with serve(delay_s=3.0) as (url, calls):
        scaler = start_live(PromQLDemand(url, timeout_s=0.3), start_refresher=False)
        try:
            from wattwise.models.trigger_metadata import parse_metadata
            from wattwise.scaler.sources import demo_metadata
            for w in snapshot().workloads:
                scaler.scaler.registry.touch(parse_metadata(w.name, w.namespace, demo_metadata(w)))
            before = len(calls)
            state = scaler.scaler.refresher.refresh_once()
            assert len(calls) - before == 1
            held = [r for r in state.degraded_reasons if "demand untrustworthy" in r]
            assert len(held) == len(snapshot().workloads)
            assert sum("not asked this refresh: Prometheus at" in r for r in held) == len(snapshot().workloads) - 1
        finally:
            scaler.stop()
