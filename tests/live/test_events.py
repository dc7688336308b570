"""Kubernetes Events on a ScaledObject when its planned replicas change: `wattwise serve` against
the fake API server (a real socket), and the poster's pacing, dropping and failures in process."""

from __future__ import annotations

import copy
import logging
import socket
import threading
import time
from types import SimpleNamespace

import pytest

from tests.kube_fake import FakeKubeApi, recorded_list, wait_until
from tests.live.serve_proc import serve, write_kubeconfig
from wattwise.kube.events import MESSAGE_BYTES, EventPoster, kube_event_post, replica_note
from wattwise.models.plan import WorkloadPlan

SCALED_OBJECT = recorded_list("scaledobjects")["items"][0]          # retail/checkout-cams, streams 48
SERVE = ["serve", "--scaler", "--extender", "--host", "127.0.0.1", "--grpc-port", "0", "--health-port", "0",
         "--http-port", "0", "--plan-inline", "--refresh-s", "1", "--grace-s", "2"]


def with_streams(streams: str) -> dict:
    so = copy.deepcopy(SCALED_OBJECT)
    so["spec"]["triggers"][0]["metadata"]["streams"] = streams
    return so


def planned(served) -> int:
    return next(w for w in served.get("/plan")["workloads"] if w["key"] == "retail/checkout-cams")["replicas"]


@pytest.fixture
def cluster(tmp_path):
    api = FakeKubeApi.recorded()
    started: list = []

    def run(event_status: int | None = None):
        api.event_status = event_status
        started.append(api.start())
        served = serve(tmp_path, [*SERVE, "--kubeconfig", str(write_kubeconfig(tmp_path / "kubeconfig", api.url))])
        started.append(served)
        assert wait_until(lambda: served.get("/plan")["workloads"], 20), served.log()
        return api, served

    yield run
    try:
        for served in started[1:]:
            assert served.stop() == 0, served.log()
    finally:
        if started:
            api.stop()


@pytest.mark.slow
def test_an_event_on_the_scaled_object_when_its_replicas_change(cluster):
    api, served = cluster()
    # the first plan: one Event per ScaledObject, on it (its uid from the store), with the count
    assert wait_until(lambda: len(api.posted_events) == 1), served.log()
    first = api.posted_events[0]
    replicas = planned(served)
    meta = SCALED_OBJECT["metadata"]
    assert first["metadata"]["namespace"] == "retail" and first["metadata"]["name"].startswith("checkout-cams.")
    assert first["involvedObject"] == {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
                                       "name": "checkout-cams", "namespace": "retail", "uid": meta["uid"],
                                       "resourceVersion": meta["resourceVersion"]}
    assert (first["type"], first["reason"]) == ("Normal", "ReplicasPlanned")
    assert first["message"].startswith(f"{replicas} replicas planned: ")
    assert "confidential: only nodes with TEE tdx" in first["message"]         # the plan's reasons
    assert first["reportingComponent"] == first["source"]["component"] == "wattwise"
    assert first["reportingInstance"] and first["count"] == 1
    assert first["firstTimestamp"] == first["lastTimestamp"]

    # a person changes `streams`: re-planned, and one Event says the new count
    api.emit("scaledobjects", "MODIFIED", with_streams("60"))
    assert wait_until(lambda: planned(served) > replicas), served.log()
    more = planned(served)
    assert wait_until(lambda: len(api.posted_events) == 2), served.log()
    second = api.posted_events[1]
    assert (second["type"], second["reason"]) == ("Normal", "ReplicasPlanned")
    assert second["message"].startswith(f"{more} replicas planned (was {replicas}): ")
    assert second["involvedObject"]["resourceVersion"] != meta["resourceVersion"]   # the object as it is now

    # more than the TDX nodes can serve: a Warning naming what cannot be met
    api.emit("scaledobjects", "MODIFIED", with_streams("96"))
    assert wait_until(lambda: len(api.posted_events) == 3), served.log()
    third = api.posted_events[2]
    assert (third["type"], third["reason"]) == ("Warning", "DemandUnmet")
    assert third["message"].startswith(f"{planned(served)} replicas planned (was {more}); ")
    assert "fps cannot be met" in third["message"]

    # refreshes that change nothing post nothing
    time.sleep(2.5)
    assert len(api.posted_events) == 3
    assert "cannot post a Kubernetes Event" not in served.log()


@pytest.mark.slow
def test_forbidden_events_do_not_stop_planning(cluster):
    api, served = cluster(event_status=403)
    assert wait_until(lambda: len(api.posted_events) == 1), served.log()
    replicas = planned(served)
    api.emit("scaledobjects", "MODIFIED", with_streams("60"))
    assert wait_until(lambda: planned(served) > replicas), served.log()
    assert wait_until(lambda: len(api.posted_events) == 2), served.log()
    refused = [line for line in served.log().splitlines() if "cannot post a Kubernetes Event" in line]
    assert len(refused) == 1, served.log()                                     # once, not per Event
    assert "forbidden (403)" in refused[0] and "`create` on events" in refused[0]


# -- the poster, in process ---------------------------------------------------------------------

def test_posts_are_paced_by_rate_and_burst():
    times = []
    poster = EventPoster(lambda ns, body: times.append(time.monotonic()), rate_per_s=20.0, burst=2).start()
    try:
        for i in range(6):
            assert poster.submit("retail", {"n": i})
        assert wait_until(lambda: poster.posted == 6, 5)
    finally:
        poster.stop()
    assert times[1] - times[0] < 0.04                     # the burst at once
    assert times[-1] - times[0] >= 4 / 20.0 - 0.02        # the rest at 20 a second
    assert poster.dropped == poster.failed == 0


def test_events_beyond_the_queue_are_dropped_and_counted(caplog):
    gate = threading.Event()
    poster = EventPoster(lambda ns, body: gate.wait(5), queue_size=3)
    with caplog.at_level(logging.WARNING, "wattwise.kube.events"):
        accepted = [poster.submit("retail", {"n": i}) for i in range(5)]   # nothing posts yet: not started
    assert accepted == [True, True, True, False, False]
    assert poster.dropped == 2 and poster.pending() == 3
    assert len([r for r in caplog.records if "dropping" in r.getMessage()]) == 1
    gate.set()
    poster.start()
    try:
        assert wait_until(lambda: poster.posted == 3, 5)
    finally:
        poster.stop()


def test_an_api_server_that_is_down_is_logged_once_and_never_raises(caplog):
    from kubernetes import client

    with socket.socket() as s:          # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    api_client = client.ApiClient(client.Configuration(host=f"http://127.0.0.1:{port}"))
    poster = EventPoster(kube_event_post(api_client, timeout_s=2.0))
    with caplog.at_level(logging.WARNING, "wattwise.kube.events"):
        results = [poster.post_now("retail", {"metadata": {"name": f"x.{i}"}}) for i in range(3)]
    assert results == [False, False, False] and poster.failed == 3 and poster.posted == 0
    logged = [r for r in caplog.records if "cannot post a Kubernetes Event" in r.getMessage()]
    assert len(logged) == 1 and poster.last_error


def workload_plan(replicas: int, *, unmet_fps: float = 0.0, held: bool = False, reasons=("r",),
                  no_trusted_demand: bool = False) -> WorkloadPlan:
    return WorkloadPlan("retail/checkout-cams", replicas, {}, {}, 100.0, 100.0, 100.0, unmet_fps, 0.0, 0.0, held, (),
                        tuple(reasons), no_trusted_demand)


def test_the_note_says_held_unmet_or_planned_and_fits_the_api_limit():
    held = replica_note("retail", "checkout-cams", workload_plan(4, held=True), 3, first=False)
    assert (held.type, held.reason) == ("Warning", "ReplicasHeld")
    assert held.message.startswith("4 replicas held (was 3): demand telemetry is untrustworthy")
    never = replica_note("retail", "checkout-cams", workload_plan(1, held=True, no_trusted_demand=True), 3, first=False)
    assert (never.type, never.reason) == ("Warning", "ReplicasHeld") and "KEDA keeps the current count" in never.message
    long = replica_note("retail", "checkout-cams", workload_plan(7, reasons=("é" * 2000,)), None, first=True)
    assert (long.type, long.reason) == ("Normal", "ReplicasPlanned")
    assert long.message.startswith("7 replicas planned: é") and long.message.endswith("...")
    assert len(long.message.encode()) <= MESSAGE_BYTES


def test_every_process_names_a_change_alike_so_the_api_server_keeps_one():
    """Two processes planning the same cluster (scaler and extender replicas) report a change
    under one Event name: the API server creates it once and answers the other 409."""
    from kubernetes import client

    from wattwise.kube.events import ReplicaEvents
    from wattwise.kube.store import ObjectStore
    from wattwise.models.snapshot import Objective

    api = FakeKubeApi().start()
    posters: list[EventPoster] = []
    try:
        store = ObjectStore("scaledobjects")
        store.apply("ADDED", copy.deepcopy(SCALED_OBJECT))
        request = SimpleNamespace(scaled_object="checkout-cams", scaled_object_namespace="retail",
                                  workload_key="retail/checkout-cams", objective=None, carbon_weight=None)
        posters = [EventPoster(kube_event_post(client.ApiClient(client.Configuration(host=api.url))))
                   for _ in range(2)]      # started once both queued their Events: they race for each name
        processes = [ReplicaEvents(store, lambda: [request], p, instance=f"wattwise-{i}")
                     for i, p in enumerate(posters)]

        def state(replicas: int, now_s: float):
            plan = SimpleNamespace(workloads={"retail/checkout-cams": workload_plan(replicas)})
            return SimpleNamespace(default_objective=Objective(), now_s=now_s,
                                   view_for=lambda objective: SimpleNamespace(plan=plan))

        for now_s, replicas in ((30.0, 3), (45.0, 3), (60.0, 5)):    # the same count again: no Event
            for process in processes:
                process(state(replicas, now_s))
        for p in posters:
            p.start()
        assert wait_until(lambda: sum(p.posted + p.already + p.failed for p in posters) == 4, 5)
        assert sum(p.posted for p in posters) == 2 and sum(p.already for p in posters) == 2
        assert sum(p.failed for p in posters) == 0
        created = {e["metadata"]["name"]: e for e in api.posted_events}
        assert len(created) == 2
        assert [e["message"] for e in created.values()] == ["3 replicas planned: r", "5 replicas planned (was 3): r"]
    finally:
        for p in posters:
            p.stop()
        api.stop()
