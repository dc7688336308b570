"""The Kubernetes API server misbehaving under `wattwise serve --scaler --extender` (the fake API of
`tests/kube_fake.py`, the recorded cluster; for a restart, reached through a TCP forwarder that
goes down and comes back on the same port): closing watches, answering 410 Gone, restarting; and
nodes vanishing between kube-scheduler's filter and prioritize calls.

In each, changes the API server makes while the fault is on (checkout-cams' ScaledObject raised
from 48 to 60 streams, a node gaining or losing TDX) reach the plan and both doors afterwards:
nothing is lost. The KEDA answer never drops below what it was, `/filter` never lets the
confidential pod onto a node without TDX, and nothing crashes."""

from __future__ import annotations

import copy
import threading
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.faults.harness import (DEADLINE_S, KEY, TDX_READY, Probe, has_tdx, recorded_lists, start_rig,
                                  stop_rig)
from tests.faults.tcp_proxy import TcpProxy
from tests.kube_fake import RESOURCES, FakeKubeApi, wait_until

pytestmark = pytest.mark.slow

NAMES = [name for name, *_ in RESOURCES]
RAISED_STREAMS = 60


def _object(api: FakeKubeApi, resource: str, name: str) -> dict:
    return copy.deepcopy(next(o for o in api.resources[resource].items if o["metadata"]["name"] == name))


def _moved_on(api: FakeKubeApi, resource_version: str = "990010") -> None:
    """The API server's current version is `resource_version` for every resource (what a list
    answers from now on), and the events before it are compacted away: a watch from an older
    version gets 410 Gone."""
    for name in NAMES:
        api.set_items(name, api.resources[name].items, resource_version)
        api.compact(name)


def _raised(api: FakeKubeApi) -> dict:
    so = _object(api, "scaledobjects", "checkout-cams")
    so["spec"]["triggers"][0]["metadata"]["streams"] = str(RAISED_STREAMS)
    return so


def _tdx_ready(api: FakeKubeApi, name: str) -> dict:
    """Node `name` with its TDX made ready (the NFD rule label and the device plugin's resource),
    as spr-tdx-1 has them."""
    node, ready = _object(api, "nodes", name), _object(api, "nodes", "spr-tdx-1")
    node["metadata"]["labels"][TDX_READY] = "true"
    node["status"]["allocatable"]["tdx.intel.com/keys"] = ready["status"]["allocatable"]["tdx.intel.com/keys"]
    return node


def _missed(api: FakeKubeApi, resource: str, obj: dict, resource_version: str) -> None:
    """Change `obj` as the API server would, with no event to any watch (what a watcher that
    could not follow misses): the object at `resource_version`, in place of the one of its name."""
    obj["metadata"]["resourceVersion"] = resource_version
    items = [obj if o["metadata"]["name"] == obj["metadata"]["name"] else o for o in api.resources[resource].items]
    api.set_items(resource, items, resource_version)


def _followed(rig) -> bool:
    """The plan, both doors, hold what changed: 60 streams, and spr-tdx-pending's TDX ready."""
    doc = rig.plan()
    w = rig.workload(doc)
    return (w["demand_fps"] == RAISED_STREAMS * 15.0 and "spr-tdx-pending" in rig.filter()["NodeNames"]
            and not doc["degraded"])


def _never_degraded(ticks) -> None:
    """Watches closing and 410 Gone are routine: the data stays trustworthy throughout."""
    degraded = [t.plan["degraded_reasons"] for t in ticks if t.plan and t.plan["degraded"]]
    assert not degraded, degraded[:3]


def _all_watching(api: FakeKubeApi) -> bool:
    return all(api.open_watches(name) >= 1 for name in NAMES)


def _watches(api: FakeKubeApi) -> dict[str, int]:
    """Watch requests so far, per resource."""
    return {name: sum(1 for s in api.resources[name].seen if s.watch) for name in NAMES}


def _watching_again(api: FakeKubeApi, before: dict[str, int]) -> bool:
    """Every resource watched by a request newer than `before`, and open."""
    now = _watches(api)
    return all(now[name] > before[name] for name in NAMES) and _all_watching(api)


@pytest.fixture
def rig(tmp_path):
    rig = start_rig(tmp_path)
    yield rig
    assert stop_rig(rig) == 0, rig.log()


def test_api_server_closing_watches(rig):
    api = rig.api
    assert wait_until(lambda: _all_watching(api), DEADLINE_S)
    baseline = rig.needed()
    listed = {name: api.lists(name) for name in NAMES}
    probe = Probe(rig).start()
    start = time.time()
    try:
        for i in range(6):                        # every watch ended, again and again
            before = _watches(api)
            for name in NAMES:
                api.close_watches(name)
            if i == 1:                            # changes while no watch may be open: replayed to the next
                api.emit("nodes", "MODIFIED", _tdx_ready(api, "spr-tdx-pending"))
            if i == 3:
                api.emit("scaledobjects", "MODIFIED", _raised(api))
            assert wait_until(lambda before=before: _watching_again(api, before), DEADLINE_S), rig.log()
            assert probe.wait_ticks(time.time(), 1)
        assert wait_until(lambda: _followed(rig), DEADLINE_S), (rig.workload(), rig.log())
        assert probe.wait_ticks(time.time(), 2)
        probe.stop()
        _never_degraded(probe.check(start, floor=baseline))
        assert {name: api.lists(name) for name in NAMES} == listed     # resumed from the last version: no relist
        assert rig.keda() > baseline and rig.alive()
    finally:
        probe.stop()


def test_api_server_answering_410_gone(rig):
    api = rig.api
    assert wait_until(lambda: _all_watching(api), DEADLINE_S)
    baseline = rig.needed()
    listed, watched = {name: api.lists(name) for name in NAMES}, _watches(api)
    probe = Probe(rig).start()
    start = time.time()
    try:
        # the API server moved on while the watches could not follow, and compacted those events away
        _missed(api, "scaledobjects", _raised(api), "990001")
        _missed(api, "nodes", _tdx_ready(api, "spr-tdx-pending"), "990002")
        _moved_on(api)
        for name in NAMES:
            api.close_watches(name)
        assert wait_until(lambda: _followed(rig), DEADLINE_S), (rig.workload(), rig.log())
        assert wait_until(lambda: _watching_again(api, watched), DEADLINE_S)
        assert probe.wait_ticks(time.time(), 2)
        probe.stop()
        _never_degraded(probe.check(start, floor=baseline))
        assert {name: api.lists(name) for name in NAMES} == {name: n + 1 for name, n in listed.items()}   # listed again
        assert "watch expired (410 Gone): listing again" in rig.log()
        assert rig.keda() > baseline and rig.alive()
    finally:
        probe.stop()


def _extender_metric(rig, name: str) -> float | None:
    with urllib.request.urlopen(rig.served.url("/metrics"), timeout=10) as r:
        text = r.read().decode()
    return next((s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name), None)


def test_api_server_restarting(tmp_path):
    lists = recorded_lists()
    api = FakeKubeApi(lists=lists).start()
    proxy = TcpProxy(int(api.url.rsplit(":", 1)[1])).up()
    rig = start_rig(tmp_path, lists, api=api, api_url=proxy.url)
    probe = None
    try:
        assert wait_until(lambda: _all_watching(api), DEADLINE_S)
        baseline = rig.needed()
        probe = Probe(rig).start()
        down = time.time()
        proxy.down()
        # while it is gone the cluster changes; it comes back with a new watch cache (events compacted)
        _missed(api, "scaledobjects", _raised(api), "990001")
        _missed(api, "nodes", _tdx_ready(api, "spr-tdx-pending"), "990002")
        _moved_on(api)
        # the doors answer on from what they know; how old it is, and that it is failing, shows
        assert wait_until(lambda: rig.degraded("Kubernetes API failing", "nodes:")
                          and rig.metric("wattwise_degraded") == 1, DEADLINE_S), (rig.plan()["degraded_reasons"],
                                                                                  rig.log())
        assert wait_until(lambda: (_extender_metric(rig, "wattwise_extender_node_cache_sync_age_seconds") or 0) >= 3,
                          DEADLINE_S)
        assert probe.wait_ticks(time.time(), 4)
        assert rig.degraded("Kubernetes API failing")
        assert all(not t.errors for t in probe.between(down)), [t.errors for t in probe.between(down) if t.errors][:3]
        up = time.time()
        proxy.up()
        assert wait_until(lambda: _followed(rig), DEADLINE_S + 30), (rig.workload(), rig.log())
        assert wait_until(lambda: rig.recovered(), DEADLINE_S), (rig.plan()["degraded_reasons"], rig.log())
        assert (_extender_metric(rig, "wattwise_extender_node_cache_sync_age_seconds") or 0) < 3
        probe.stop()
        probe.check(down, up, floor=baseline)
        probe.check(up)
        assert rig.keda() > baseline and rig.alive()
    finally:
        if probe is not None:
            probe.stop()
        code = rig.served.stop()
        proxy.down()
        api.stop()
    assert code == 0, rig.log()


def test_nodes_vanishing_between_filter_and_prioritize(rig):
    """kube-scheduler filters, the node is deleted (or deleted and re-created without its TEE),
    then it prioritizes the names its filter call got back: never an error, a vanished node
    scores 0 and is filtered out from then on; the plan moves off it and says what it cannot
    meet; when the node is back, the plan is whole again."""
    api = rig.api
    baseline = rig.needed()
    before = rig.workload()
    assert before["unmet_fps"] == 0 and "spr-tdx-2" in {p["node"] for p in before["placements"]}
    probe = Probe(rig).start()
    node = _object(api, "nodes", "spr-tdx-2")
    failures: list[str] = []
    raced = []
    stop = threading.Event()

    def scheduler():
        """filter, then prioritize with what filter passed, as fast as it can (the race window)."""
        while not stop.is_set():
            try:
                passed = rig.filter()["NodeNames"] or []
                scores = {s["Host"]: s["Score"] for s in rig.prioritize(passed)}
                if set(scores) != set(passed) or any(not 0 <= s <= 100 for s in scores.values()):
                    failures.append(f"prioritize({passed}) -> {scores}")
                gone = set(passed) - {n["metadata"]["name"] for n in api.resources["nodes"].items if has_tdx(n)}
                if gone:
                    raced.append((passed, scores))
            except (OSError, ValueError) as e:
                failures.append(f"{type(e).__name__}: {e}")

    start = time.time()
    racer = threading.Thread(target=scheduler, daemon=True)
    racer.start()
    try:
        passed = rig.filter()["NodeNames"]
        assert "spr-tdx-2" in passed
        api.emit("nodes", "DELETED", node)
        assert wait_until(lambda: "spr-tdx-2" in rig.filter(passed)["FailedAndUnresolvableNodes"], DEADLINE_S)
        scores = {s["Host"]: s["Score"] for s in rig.prioritize(passed)}
        assert scores["spr-tdx-2"] == 0 and set(scores) == set(passed)
        assert "not yet in the WattWise extender's node cache" in rig.filter(passed)["FailedAndUnresolvableNodes"]["spr-tdx-2"]

        # the plan moves off it, says what it cannot meet, never relaxes the TEE to make up for it
        def moved_off() -> bool:
            w = rig.workload()
            return "spr-tdx-2" not in {p["node"] for p in w["placements"]} and w["unmet_fps"] > 0
        assert wait_until(moved_off, DEADLINE_S), rig.workload()
        w = rig.workload()
        assert {p["node"] for p in w["placements"]} <= {"spr-tdx-1"}
        assert any("confidentiality is never relaxed" in r for r in w["reasons"]), w["reasons"]

        # re-created under the same name without TDX: never offered to the confidential pod
        plain = copy.deepcopy(node)
        plain["metadata"]["labels"].pop(TDX_READY)
        plain["status"]["allocatable"].pop("tdx.intel.com/keys", None)
        plain["metadata"]["uid"] = "uid-spr-tdx-2-recreated"
        api.emit("nodes", "ADDED", plain)
        assert wait_until(lambda: "spr-tdx-2" in rig.filter()["FailedAndUnresolvableNodes"], DEADLINE_S)
        assert "spr-tdx-2" not in rig.filter(passed)["NodeNames"]

        # its TDX back: the plan is whole again
        api.emit("nodes", "MODIFIED", node)
        assert wait_until(lambda: rig.workload()["unmet_fps"] == 0 and "spr-tdx-2" in rig.filter()["NodeNames"],
                          DEADLINE_S), rig.workload()
        assert wait_until(lambda: rig.keda() >= baseline, DEADLINE_S)
        stop.set()
        racer.join(10)
        probe.stop()
        probe.check(start)
        assert not failures, failures[:5]
        assert rig.alive()
        assert rig.metric("wattwise_planned_replicas", workload=KEY, objective="energy") >= before["replicas"]
    finally:
        stop.set()
        probe.stop()

