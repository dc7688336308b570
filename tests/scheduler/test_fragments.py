"""Names-mode replies written from per-node fragments (scheduler/fragments.py) parse to exactly what
the general path gives (`Decider.filter` / `Decider.scores` encoded by `wire`), for any candidate
list: subsets in any order, unknown or repeated names, odd characters, every kind of pod, both
JSON backends, with the C accelerator and without it; and they are counted the same in the
metrics. Requests as kube-scheduler sends them take the accelerator's path."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wattwise.scheduler import wire
from wattwise.scheduler import fragments
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


@pytest.fixture(scope="module", params=["c", "python"])
def accelerator(request):
    """With the C accelerator (built: test_name_scan checks), and as if it were not built."""
    before = fragments._names
    if request.param == "python":
        fragments._names = None
    yield request.param
    fragments._names = before


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
def test_joined_replies_parse_to_the_general_paths(source, cache, backend, accelerator, data):
    service = ExtenderService(source, cache)
    names = list(cache.nodes().entries)
    pod = data.draw(st.sampled_from(PODS))
    picked = data.draw(candidates(names))
    compact = data.draw(st.booleans())   # as Go writes it, or as Python's json does
    body = json.dumps(args_names(pod, picked), separators=(",", ":") if compact else None).encode()
    filtered, scores, tally = general_replies(service, pod, picked)
    kind = pod_intent(pod, service.decider().workloads).kind
    plain = len(set(picked)) == len(picked) and set(picked) <= set(names)
    fast = service._names_fast(body, ("managed", "tee-only")) is not None
    assert fast == (accelerator == "c" and plain and kind in ("managed", "tee-only"))
    for _ in range(2):   # computed, then from the reply cache
        assert json.loads(service.filter(body)) == filtered
        assert json.loads(service.prioritize(body)) == scores
    decider = service.decider()
    intent = pod_intent(pod, decider.workloads)
    positions = decider.name_index(cache.nodes()).positions(picked)
    plain = positions is not None and intent.kind != "passthrough"
    answer = decider.filter_reply(intent, positions, cache.nodes()) if plain else None
    if answer is not None:
        assert answer[1] == tally


def test_fast_path_answers_kube_scheduler_shaped_requests(source, cache):
    """Every cached name once, in any order: the joined replies, not the general path."""
    service = ExtenderService(source, cache)
    decider = service.decider()
    names = list(cache.nodes().entries)[::-1]
    positions = decider.name_index(cache.nodes()).positions(names)
    assert positions is not None
    for pod in PODS:
        intent = pod_intent(pod, decider.workloads)
        if intent.kind in ("managed", "tee-only"):
            assert decider.filter_reply(intent, positions, cache.nodes()) is not None


def test_name_index_finds_positions_in_request_order():
    index = NameIndex(["a", "b", "c"])
    assert index.positions(["c", "a"]).tolist() == [2, 0]
    assert index.positions(["b"]).tolist() == [1]
    assert index.positions([]).tolist() == []
    assert index.positions(["a", "x"]) is None          # unknown
    assert index.positions(["a", "b", "a"]) is None     # repeated
    assert index.positions(["a"]).dtype == np.dtype(np.uint32)


def test_names_must_be_strings():
    for names in (["a", 1], [None], "a,b", [["a"]]):
        with pytest.raises(wire.BadRequest, match="NodeNames: must be a list of node names"):
            wire.parse_extender_args({"Pod": {}, "NodeNames": names})
    assert wire.parse_extender_args({"Pod": {}, "NodeNames": ["a", "b"]}).names_key == "a\0b"
    # a NUL inside a name cannot be told from the separator: such lists are keyed by their tuple
    assert wire.parse_extender_args({"Pod": {}, "NodeNames": ["a\0b"]}).names_key == ("a\0b",)
    assert wire.parse_extender_args({"Pod": {}, "NodeNames": ["a", "b"]}).names_key != \
        wire.parse_extender_args({"Pod": {}, "NodeNames": ["a\0b"]}).names_key
