"""Names-mode replies joined from per-node fragments (scheduler/fragments.py) parse to exactly what
the general path gives (`Decider.filter` / `Decider.scores` encoded by `wire`), for any candidate
list: subsets in any order, unknown or repeated names, odd characters, every kind of pod, both
JSON backends; and they are counted the same in the metrics."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wattwise.scheduler import wire
from wattwise.scheduler.fragments import NameIndex
from wattwise.scheduler.intent import pod_intent
from wattwise.scheduler.node_cache import StaticNodeCache
from wattwise.scheduler.service import ExtenderService

from .helpers import args_names, recorded_node_list, recorded_pods

WORKLOADS = ["retail/checkout-cams", "retail/parking-lpr", "security/badge-readers", "analytics/footfall-counter",
             "city/city-traffic", "retail/not-planned-yet"]
ODD_NAMES = ["ghost-7", 'quote"d', "back\\slash", "uni-é-ß-😀", "", "comma,\"brace\"}"]


def managed_pod(workload_key: str, tee: str | None = None) -> dict:
    ns, name = workload_key.split("/")
    meta = {"name": f"{name}-abc12", "namespace": ns, "labels": {"wattwise.io/workload": workload_key}}
    if tee:
        meta["annotations"] = {"wattwise.io/tee": tee}
    return {"metadata": meta, "spec": {"containers": [{"name": "c"}]}}


PODS = [managed_pod(w) for w in WORKLOADS] + [managed_pod(WORKLOADS[0], "tdx,sev-snp")] + [
    p for k, p in recorded_pods().items() if k != "unmanaged_plain"]


@pytest.fixture(scope="module", params=["orjson", "stdlib"])
def backend(request):
    before = wire.set_json_backend(request.param)
    yield request.param
    wire.set_json_backend(before)


@pytest.fixture(scope="module", params=["snapshot", "recorded"])
def cache(request, source):
    """The scenario's nodes (cost classes of one to a few nodes, plan-placed nodes), or recorded
    Node JSON (TEE not ready, cordoned, GPU)."""
    if request.param == "snapshot":
        return StaticNodeCache.from_snapshot(source.current().snapshot)
    return StaticNodeCache.from_node_json(recorded_node_list()["items"])


def general_replies(service: ExtenderService, pod: dict, names: list[str]) -> tuple[object, object, Counter]:
    """What the general path answers: the filter and prioritize replies, decoded, and the filter tally."""
    decider = service.decider()
    intent = pod_intent(pod, decider.workloads)
    args = wire.parse_extender_args(args_names(pod, names))
    nodes = service.node_cache.nodes()
    if intent.kind == "passthrough":
        return json.loads(wire.encode(wire.passthrough_filter_result(args))), [], Counter()
    d = decider.filter(intent, names, nodes)
    filtered = json.loads(wire.encode(wire.filter_result(args, d.passed, d.failed, d.unresolvable)))
    scores = json.loads(wire.encode(wire.host_priority_list(decider.scores(intent, names, nodes))))
    return filtered, scores, d.tally()


@st.composite
def candidates(draw, names: list[str]) -> list[str]:
    """A subset of the cache's names in any order, now and then with unknown or repeated names."""
    picked = draw(st.permutations(names))[:draw(st.integers(0, len(names)))]
    if draw(st.integers(0, 4)) == 0:
        picked = picked + draw(st.lists(st.sampled_from(ODD_NAMES + names), max_size=3))
        picked = draw(st.permutations(picked))
    return picked


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_joined_replies_parse_to_the_general_paths(source, cache, backend, data):
    service = ExtenderService(source, cache)
    names = list(cache.nodes().entries)
    pod = data.draw(st.sampled_from(PODS))
    picked = data.draw(candidates(names))
    body = json.dumps(args_names(pod, picked)).encode()
    filtered, scores, tally = general_replies(service, pod, picked)
    for _ in range(2):   # computed, then from the reply cache
        assert json.loads(service.filter(body)) == filtered
        assert json.loads(service.prioritize(body)) == scores
    decider = service.decider()
    intent = pod_intent(pod, decider.workloads)
    answer = decider.filter_reply(intent, picked, cache.nodes()) if intent.kind != "passthrough" else None
    if answer is not None:
        assert answer[1] == tally


def test_fast_path_answers_kube_scheduler_shaped_requests(source, cache):
    """Every cached name once, in any order: the joined replies, not the general path."""
    service = ExtenderService(source, cache)
    decider = service.decider()
    names = list(cache.nodes().entries)[::-1]
    for pod in PODS:
        intent = pod_intent(pod, decider.workloads)
        if intent.kind in ("managed", "tee-only"):
            assert decider.filter_reply(intent, names, cache.nodes()) is not None
        if intent.kind == "managed":
            assert decider.priority_reply(intent, names, cache.nodes()) is not None


def test_name_index_finds_positions_in_request_order():
    index = NameIndex(["a", "b", "c"])
    assert index.positions(["c", "a"]).tolist() == [2, 0]
    assert index.positions(["b"]).tolist() == [1]
    assert index.positions([]).tolist() == []
    assert index.positions(["a", "x"]) is None          # unknown
    assert index.positions(["a", "b", "a"]) is None     # repeated
    assert index.positions(["a"]).dtype == np.dtype("<u4")


def test_names_must_be_strings():
    for names in (["a", 1], [None], "a,b", [["a"]]):
        with pytest.raises(wire.BadRequest, match="NodeNames: must be a list of node names"):
            wire.parse_extender_args({"Pod": {}, "NodeNames": names})
    assert wire.parse_extender_args({"Pod": {}, "NodeNames": ["a", "b"]}).names_key == "a\0b"
    # a NUL inside a name cannot be told from the separator: such lists are keyed by their tuple
    assert wire.parse_extender_args({"Pod": {}, "NodeNames": ["a\0b"]}).names_key == ("a\0b",)
    assert wire.parse_extender_args({"Pod": {}, "NodeNames": ["a", "b"]}).names_key != \
        wire.parse_extender_args({"Pod": {}, "NodeNames": ["a\0b"]}).names_key
