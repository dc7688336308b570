"""Prometheus faults under `wattwise serve --scaler --extender`: killed and restarted (a real
Prometheus scraping a tiny gateway exporter every second), slow, answering errors, answering
garbage (an aiohttp stand-in for Prometheus's HTTP API: the fault is the answer itself).

checkout-cams' demand is its ScaledObject's `query`, evaluated at each 1 s plan time. In each test
the demand falls during the fault (48 -> 20 streams), which nobody can tell: the answers hold the
replicas the last trustworthy demand needed, `/plan` and `wattwise_degraded` say why, and when
the fault ends it recovers by itself and follows the data again."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from tests.faults.harness import DEADLINE_S, KEY, Probe, recorded_lists, start_rig, stop_rig
from tests.faults.stand_ins import ERROR, GARBAGE, OK, SLOW, PrometheusStandIn, StreamsExporter
from tests.kube_fake import wait_until
from tests.prometheus_fixture import INSTALL_HINT, missing_binaries, start_prometheus

pytestmark = pytest.mark.slow

QUERY = 'sum(wattwise_active_streams{namespace="retail",workload="checkout-cams"})'
BUSY, QUIET = 48, 20
FPS_PER_STREAM = 15.0       # the catalogue default: demand_fps = streams x 15


def _demand_is(rig, streams: float) -> bool:
    w = rig.workload()
    return w["demand_fps"] == pytest.approx(streams * FPS_PER_STREAM) and not w["held"]


def _trusted_again(rig) -> bool:
    """Recovered: not degraded, the demand trusted (not held, staleness 0). The plan's demand_fps
    stays the peak of the scale-down window, so a demand that fell shows only later."""
    return (rig.recovered() and not rig.workload()["held"] and rig.metric("wattwise_demand_held", workload=KEY) == 0
            and rig.metric("wattwise_telemetry_staleness_seconds", workload=KEY) == 0)


def _held(rig) -> bool:
    return (rig.workload()["held"] and rig.metric("wattwise_demand_held", workload=KEY) == 1
            and rig.metric("wattwise_degraded") == 1)


def _baseline(rig) -> float:
    """Settled on trustworthy data: the KEDA answer the last trustworthy demand needs."""
    assert wait_until(lambda: _demand_is(rig, BUSY) and rig.recovered(), DEADLINE_S), rig.log()
    return rig.needed()


@pytest.fixture
def stand_in():
    prom = PrometheusStandIn(BUSY).start()
    yield prom
    prom.stop()


@pytest.fixture
def rig_on(tmp_path):
    rigs = []

    def start(url: str):
        rig = start_rig(tmp_path, recorded_lists(query=QUERY, streams=None), ["--prometheus", url])
        rigs.append(rig)
        return rig
    yield start
    for rig in rigs:
        assert stop_rig(rig) == 0, rig.log()


def _restart(prom) -> None:
    """Start Prometheus again on the same address and storage, as a restarted pod would."""
    prom.process = subprocess.Popen(prom.process.args, stdout=open(prom.workdir / "prometheus-2.log", "wb"),
                                    stderr=subprocess.STDOUT, cwd=prom.workdir)


def _prometheus_has(url: str, streams: float) -> bool:
    try:
        q = urllib.parse.urlencode({"query": QUERY})
        with urllib.request.urlopen(f"{url}/api/v1/query?{q}", timeout=2) as r:
            result = json.load(r)["data"]["result"]
        return bool(result) and float(result[0]["value"][1]) == streams
    except OSError:
        return False


def test_prometheus_killed_then_restarted(tmp_path, rig_on):
    if missing_binaries():
        pytest.fail(f"prometheus not found: {INSTALL_HINT}", pytrace=False)
    exporter = StreamsExporter(BUSY).start()
    prom = start_prometheus(None, tmp_path / "prometheus", config_text=exporter.scrape_config(1.0))
    probe = None
    try:
        assert wait_until(lambda: _prometheus_has(prom.url, BUSY), DEADLINE_S), prom.log_text[-2000:]
        rig = rig_on(prom.url)
        baseline = _baseline(rig)
        probe = Probe(rig).start()

        fault = time.time()
        prom.kill()                              # SIGKILL: no clean shutdown
        exporter.streams = QUIET                 # demand falls meanwhile; nobody can tell
        assert wait_until(lambda: rig.degraded("demand untrustworthy", "unreachable") and _held(rig), DEADLINE_S), \
            rig.log()
        assert wait_until(lambda: (rig.metric("wattwise_telemetry_staleness_seconds", workload=KEY) or 0) >= 3,
                          DEADLINE_S), rig.log()
        assert probe.wait_ticks(time.time(), 3)

        back = time.time()
        _restart(prom)                           # same port, same storage (its WAL replayed)
        assert wait_until(lambda: _trusted_again(rig), DEADLINE_S + 15), (rig.workload(), rig.log())
        assert rig.metric("wattwise_demand_held", workload=KEY) == 0
        assert probe.wait_ticks(back, 3)         # trust can return within one probe interval of the restart
        probe.stop()

        probe.check(fault, back, floor=baseline)   # held while Prometheus was gone
        probe.check(back)                          # and through its restart: no error, no TEE violation
        assert rig.alive()
    finally:
        if probe is not None:
            probe.stop()
        prom.stop()
        exporter.stop()


def _fault_then_recover(rig, stand_in, faults, max_rpc_s: float = 1.0) -> None:
    """The shared shape of the stand-in tests: a baseline on good data, then each fault in turn
    (`faults`: (set it up, words its degraded reason must name)), the demand falling meanwhile:
    held and degraded naming it for several refreshes, KEDA answered from memory (within
    `max_rpc_s`: no RPC waits on Prometheus); then the stand-in answers again and it recovers."""
    baseline = _baseline(rig)
    probe = Probe(rig).start()
    try:
        fault = time.time()
        stand_in.value = QUIET                   # demand falls meanwhile; nobody can tell
        for set_up, words in faults:
            set_up()
            assert wait_until(lambda words=words: rig.degraded("demand untrustworthy", *words) and _held(rig),
                              DEADLINE_S), \
                (words, rig.plan()["degraded_reasons"], rig.log())
            assert probe.wait_ticks(time.time(), 6)     # several refreshes of the fault
            assert rig.degraded("demand untrustworthy", *words) and _held(rig)
        end = time.time()
        stand_in.mode = OK
        assert wait_until(lambda: _trusted_again(rig), DEADLINE_S + 10), rig.log()
        assert rig.metric("wattwise_demand_held", workload=KEY) == 0
        probe.stop()
        during = probe.check(fault, end, floor=baseline)
        slowest = max(t.keda_s for t in during)
        assert slowest <= max_rpc_s, f"a GetMetrics took {slowest:.2f} s during the fault"
        probe.check(end)
        assert rig.alive()
    finally:
        probe.stop()


def test_prometheus_slow(stand_in, rig_on):
    """10 s answers; serve's demand queries give up after 1 s (half the refresh interval)."""
    rig = rig_on(stand_in.url)

    def slow():
        stand_in.mode, stand_in.delay_s = SLOW, 10.0
    _fault_then_recover(rig, stand_in, [(slow, ("took longer than 1s",))])


def test_prometheus_answering_errors(stand_in, rig_on):
    rig = rig_on(stand_in.url)

    def status(code):
        def set_up():
            stand_in.mode, stand_in.status = ERROR, code
        return set_up
    _fault_then_recover(rig, stand_in, [(status(500), ("HTTP 500", "lock DB directory")),
                                        (status(503), ("refused with HTTP 503",)), (status(422), ("HTTP 422",))])


GARBAGE_ANSWERS = {
    "html": (b"<html><body>502 Bad Gateway</body></html>", "not a prometheus api answer"),
    "truncated": (b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"val',
                  "not a prometheus api answer"),
    "not-a-vector": ({"status": "success", "data": {"resultType": "vector", "result": "48"}},
                     "not a prometheus api answer (typeerror"),
    "no-value": ({"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}}]}},
                 "not a prometheus api answer (keyerror"),
    "word": ({"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, "many"]}]}},
             "not a prometheus api answer (valueerror"),
    "nan": ({"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, "NaN"]}]}},
            "implausible value nan"),
    "negative": ({"status": "success", "data": {"resultType": "vector",
                                                "result": [{"metric": {}, "value": [1, "-48"]}]}},
                 "implausible value -48"),
    "absurd": ({"status": "success", "data": {"resultType": "vector",
                                              "result": [{"metric": {}, "value": [1, "1e12"]}]}},
               "implausible value 1000000000000"),
}


def test_prometheus_answering_garbage(stand_in, rig_on):
    """One garbage answer after another, each held and named, then good answers again."""
    rig = rig_on(stand_in.url)

    def garbage(body):
        def set_up():
            stand_in.mode, stand_in.garbage = GARBAGE, body
        return set_up
    _fault_then_recover(rig, stand_in, [(garbage(body), (words,)) for body, words in GARBAGE_ANSWERS.values()])
