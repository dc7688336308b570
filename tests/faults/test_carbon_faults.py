"""A carbon provider timing out or failing under `wattwise serve --objective carbon` (an aiohttp
stand-in for Electricity Maps' API: the fault is its answer; `--carbon-config` points there).

Carbon never decides how many replicas the demand needs, only where they run: during the fault
the KEDA answer stays at least what the demand (48 streams, fixed) needed before it, every plan
still covers the demand, the zone is planned at no less than the conservative default (never as
cleaner than it is), `/plan` shows the zone stale (or default) and degraded naming the provider,
`wattwise_degraded` is 1; when the provider answers again it recovers by itself."""

from __future__ import annotations

import copy
import json
import time

import pytest

from tests.faults.harness import DEADLINE_S, Probe, start_rig, stop_rig
from tests.faults.stand_ins import ERROR, GARBAGE, OK, SLOW, CarbonStandIn
from tests.kube_fake import wait_until

pytestmark = pytest.mark.slow

CLEAN = {"DE": 120.0, "US-CAL-CISO": 240.0}
DEFAULT_G = 500.0


@pytest.fixture
def provider():
    stand_in = CarbonStandIn(CLEAN).start()
    yield stand_in
    stand_in.stop()


@pytest.fixture
def rig(tmp_path, provider):
    config = tmp_path / "carbon.json"
    config.write_text(json.dumps({
        "provider": "electricitymaps", "auth_token": "test-token", "base_url": provider.url, "with_forecast": False,
        "ttl_s": 1, "timeout_s": 1, "refresh_timeout_s": 0.5, "failure_backoff_s": 0.5,
        "default_g_per_kwh": DEFAULT_G}))
    rig = start_rig(tmp_path, args=["--objective", "carbon", "--carbon-config", str(config)])
    yield rig
    assert stop_rig(rig) == 0, rig.log()


def _carbon(rig) -> dict:
    return rig.plan()["inputs"]["carbon"]


def _fresh(rig) -> bool:
    zones = _carbon(rig)
    return (all(zones[z]["status"] in ("fresh", "cached") and zones[z]["g_per_kwh"] == g for z, g in CLEAN.items())
            and rig.recovered())


def _covers_demand(doc: dict) -> bool:
    w = next(w for w in doc["workloads"] if w["key"] == "retail/checkout-cams")
    capacity = {m["node_class"]: m["capacity_fps"] for m in doc["inputs"]["models"] if m["workload"] == w["key"]}
    return w["unmet_fps"] == 0 and sum(p["replicas"] * capacity[p["node_class"]] for p in w["placements"]) \
        >= w["demand_fps"] > 0


def _provider_fault(rig, provider, set_up, words: tuple[str, ...]) -> None:
    assert wait_until(lambda: _fresh(rig), DEADLINE_S), (_carbon(rig), rig.log())
    baseline = rig.needed()
    probe = Probe(rig).start()
    try:
        fault = time.time()
        set_up()
        assert wait_until(lambda: rig.degraded("carbon intensity for DE") and rig.metric("wattwise_degraded") == 1,
                          DEADLINE_S), (rig.plan()["degraded_reasons"], rig.log())
        assert probe.wait_ticks(time.time(), 6)          # several refreshes of the fault
        # the plan in use is the last one (carbon alone re-plans no sooner than 30 s after it,
        # docs/scaler.md); a node joining re-plans at once, with DE's reading as the fault left it
        joined = copy.deepcopy(next(n for n in rig.api.resources["nodes"].items
                                    if n["metadata"]["name"] == "clx-plain-1"))
        joined["metadata"].update(name="clx-plain-2", uid="uid-clx-plain-2")
        rig.api.emit("nodes", "ADDED", joined)
        assert wait_until(lambda: "clx-plain-2" in {n["name"] for n in rig.plan()["nodes"]}, DEADLINE_S), rig.log()
        doc = rig.plan()
        de = doc["inputs"]["carbon"]["DE"]
        assert de["status"] in ("stale", "default"), de     # the core counts it at no less than the default
        assert rig.degraded("carbon intensity for DE") and rig.metric("wattwise_degraded") == 1
        assert _covers_demand(doc)
        end = time.time()
        provider.mode = OK
        # the reasons clear at once; the plan takes the fresh value at its next re-plan (the gate's)
        assert wait_until(lambda: rig.recovered(), DEADLINE_S), (rig.plan()["degraded_reasons"], rig.log())
        assert probe.wait_ticks(end, 2)                  # recovery can come within one probe interval
        probe.stop()
        during = probe.check(fault, end, floor=baseline)
        said = " ".join(r for t in during if t.plan for r in t.plan["degraded_reasons"])
        assert all(w in said for w in words), (words, said[:2000])
        assert all(_covers_demand(t.plan) for t in during if t.plan is not None)
        assert max(t.keda_s for t in during) <= 1.0      # answers never wait on the provider
        probe.check(end)
        assert rig.alive()
    finally:
        probe.stop()


def test_carbon_provider_timing_out(rig, provider):
    def hang():
        provider.mode, provider.delay_s = SLOW, 10.0      # answers after 10 s; serve waits 0.5 s
    _provider_fault(rig, provider, hang, ("no answer within 0.5 s", "is stale"))


def test_carbon_provider_failing(rig, provider):
    def failing():
        provider.mode, provider.status = ERROR, 500
    _provider_fault(rig, provider, failing, ("HTTP 500", "is stale"))


def test_carbon_provider_answering_garbage(rig, provider):
    def garbage():
        provider.mode, provider.garbage = GARBAGE, {"zone": "DE", "carbonIntensity": "lots", "datetime": "yesterday"}
    _provider_fault(rig, provider, garbage, ("unexpected response", "is stale"))
