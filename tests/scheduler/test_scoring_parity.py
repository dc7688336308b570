"""Prioritize serves exactly the core's scores (models.scoring), as the planner and simulator use."""

from __future__ import annotations

import pytest

from wattwise.models.eligibility import hard_reason
from wattwise.models.scoring import node_costs, scores_from_costs
from wattwise.scheduler.node_cache import StaticNodeCache
from wattwise.scheduler.server import start_extender

from .helpers import args_names, post

WORKLOADS = ["retail/checkout-cams", "retail/parking-lpr", "security/badge-readers", "analytics/footfall-counter",
             "city/city-traffic"]


@pytest.fixture(scope="module")
def demo(source):
    handle = start_extender(source, "127.0.0.1", 0, StaticNodeCache.from_snapshot(source.current().snapshot))
    yield handle
    handle.stop(2.0)


def managed_pod(workload_key: str) -> dict:
    ns, name = workload_key.split("/")
    return {"metadata": {"name": f"{name}-abc12", "namespace": ns, "labels": {"wattwise.io/workload": workload_key}},
            "spec": {"containers": [{"name": "c"}]}}


def core_scores(view, workload_key: str, candidates: list[str]) -> dict[str, int]:
    snap, plan = view.snapshot, view.plan
    w = next(w for w in snap.workloads if w.key == workload_key)
    by_name = {n.name: n for n in snap.nodes}
    allowed = [n for n in candidates
               if hard_reason(w, by_name[n], snap.node_classes[by_name[n].node_class],
                              snap.model(w, snap.node_classes[by_name[n].node_class])) is None]
    planned = {n for n, c in plan.workloads[workload_key].by_node.items() if c > 0}
    costs = node_costs(snap, w, allowed, active_nodes=frozenset(plan.active_nodes), planned_nodes=planned)
    scores = scores_from_costs(costs)
    return {n: scores.get(n, 0) for n in candidates}


@pytest.mark.parametrize("workload_key", WORKLOADS)
def test_prioritize_equals_models_scoring(demo, source, workload_key):
    view = source.current()
    names = [n.name for n in view.snapshot.nodes]
    for candidates in (names, names[::3], [n for n in names if n.startswith(("uk-", "us-"))]):
        status, reply = post(demo.url + "/prioritize", args_names(managed_pod(workload_key), candidates))
        assert status == 200
        assert {s["Host"]: s["Score"] for s in reply} == core_scores(view, workload_key, candidates)


def test_scores_are_not_ranks(demo, source):
    names = [n.name for n in source.current().snapshot.nodes]
    _, reply = post(demo.url + "/prioritize", args_names(managed_pod("retail/checkout-cams"), names))
    allowed = [s["Score"] for s in reply if s["Host"].startswith(("de-spr", "uk-spr"))]
    assert max(allowed) == 10 and all(0 <= s <= 10 for s in allowed)
    assert 1 < len(set(allowed)) < len(allowed)  # equal costs share a score, unlike ranks
