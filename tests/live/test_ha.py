"""High availability: the shipped Deployment runs two replicas behind one Service each for KEDA and
kube-scheduler, which call whichever replica the Service picks. Two `wattwise serve` processes
against the same (fake) Kubernetes API must therefore give the same plan and the same answers,
after every change the cluster makes and while one of them restarts."""

from __future__ import annotations

import copy

import pytest

from tests.kube_fake import FakeKubeApi, recorded_list, wait_until
from tests.live.serve_proc import Served, serve, write_kubeconfig

pytestmark = pytest.mark.slow

SERVE = ["serve", "--scaler", "--extender", "--host", "127.0.0.1", "--grpc-port", "0", "--health-port", "0",
         "--http-port", "0", "--plan-inline", "--refresh-s", "1", "--grace-s", "2"]
CHECKOUT = recorded_list("scaledobjects")["items"][0]                      # retail/checkout-cams
NODES = {n["metadata"]["name"]: n for n in recorded_list("nodes")["items"]}
POD = {"metadata": {"name": "checkout-cams-7d9f-x1", "namespace": "retail",
                    "labels": {"wattwise.io/workload": "checkout-cams"}},
       "spec": {"runtimeClassName": "kata-qemu-tdx",
                "containers": [{"name": "inference", "resources": {"requests": {"cpu": "4", "memory": "8Gi"}}}]}}


def decision(served: Served) -> dict:
    """What a replica decides, without what differs by construction (versions, times, process)."""
    doc = served.get("/plan")
    workloads = {w["key"]: (w["replicas"], w["unmet_fps"],
                            sorted((p["node"], p["replicas"]) for p in w["placements"]))
                 for w in doc["workloads"]}
    return {"workloads": workloads, "active": sorted(n["name"] for n in doc["nodes"] if n["state"] == "active"),
            "power_w": doc["power_w"]}


def answers(served: Served) -> dict:
    """What KEDA and kube-scheduler are told for the same questions."""
    md = dict(CHECKOUT["spec"]["triggers"][0]["metadata"])
    names = sorted(NODES)
    scores = served.post("/prioritize", {"Pod": POD, "NodeNames": names})
    verdicts = served.post("/filter", {"Pod": POD, "NodeNames": names})
    return {"keda": served.metrics("checkout-cams", "retail", md),
            "scores": sorted((s["Host"], s["Score"]) for s in scores),
            "filter": sorted(verdicts["NodeNames"] or []), "failed": sorted(verdicts.get("FailedNodes") or {})}


def agree(a: Served, b: Served) -> bool:
    try:
        return decision(a) == decision(b) and answers(a) == answers(b)
    except OSError:      # a replica not up yet
        return False


def start(tmp_path, name: str, kubeconfig) -> Served:
    where = tmp_path / name
    where.mkdir(exist_ok=True)
    served = serve(where, [*SERVE, "--kubeconfig", str(kubeconfig)])
    assert wait_until(lambda: served.get("/plan")["workloads"], 30), served.log()
    return served


@pytest.fixture
def pair(tmp_path):
    api = FakeKubeApi.recorded().start()
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", api.url)
    replicas = [start(tmp_path, "a", kubeconfig), start(tmp_path, "b", kubeconfig)]
    try:
        yield api, replicas, lambda name: start(tmp_path, name, kubeconfig)
    finally:
        for served in replicas:
            served.stop()
        api.stop()


def test_two_replicas_give_the_same_plan_and_answers_across_changes_and_a_restart(pair):
    api, replicas, restart = pair
    a, b = replicas
    assert wait_until(lambda: agree(a, b), 30), (decision(a), decision(b))
    first = decision(a)
    assert first["workloads"]["retail/checkout-cams"][0] > 0

    more = copy.deepcopy(CHECKOUT)                 # a person raises `streams`: both re-plan alike
    more["spec"]["triggers"][0]["metadata"]["streams"] = "72"
    api.emit("scaledobjects", "MODIFIED", more)
    assert wait_until(lambda: decision(a)["workloads"]["retail/checkout-cams"][0]
                      > first["workloads"]["retail/checkout-cams"][0], 45), a.log()
    assert wait_until(lambda: agree(a, b), 45), (decision(a), decision(b))

    # steady state: refresh after refresh (1 s each) they stay in agreement
    for _ in range(3):
        assert agree(a, b), (decision(a), decision(b))

    # b restarts (a rolling update) while the cluster changes: a node joins
    assert b.stop() == 0, b.log()
    added = copy.deepcopy(NODES["spr-tdx-2"])
    added["metadata"].update(name="spr-tdx-3", uid="uid-spr-tdx-3")
    api.emit("nodes", "ADDED", added)
    assert wait_until(lambda: "spr-tdx-3" in {n["name"] for n in a.get("/plan")["nodes"]}, 45), a.log()
    b = replicas[1] = restart("b2")
    assert wait_until(lambda: agree(a, b), 45), (decision(a), decision(b))
