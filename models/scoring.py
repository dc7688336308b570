"""Placement scores: the marginal cost per frame of running one more replica on a node.

cost/frame = k_zone * (b + a / cap) + k_zone * wake / cap   (wake only when the node would have
to be woken or kept on just for this replica), lowered for the node classes the plan is short of
and the nodes the plan keeps active. Used by the planner's rankings, the scheduler extender's
prioritize and the simulator alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

from wattwise.models.costs import wake_cost_w, zone_weights
from wattwise.models.snapshot import Snapshot
from wattwise.models.workload import Workload

MAX_SCORE = 10
PLAN_PREFERENCE = 0.85  # a node the plan wants costs this fraction of its marginal cost


@dataclass(frozen=True)
class NodeCost:
    node: str
    j_per_frame: float        # energy per frame of one replica at capacity, incl. wake share
    weighted_cost: float      # objective-weighted, after plan preferences
    planned: bool


def node_costs(snapshot: Snapshot, workload: Workload, node_names, active_nodes=frozenset(),
               planned_nodes=frozenset(), short_classes=frozenset(), by_name=None, weights=None,
               models=None) -> list[NodeCost]:
    """Costs for the named nodes that exist and can run the workload. Callers that score often
    may pass `by_name` (node name to Node), `weights` (zone to cost weight) and `models` (class
    name to the workload's `snapshot.model` there) to skip rebuilding them."""
    by_name = by_name if by_name is not None else {n.name: n for n in snapshot.nodes}
    weights = weights if weights is not None else zone_weights(snapshot, {n.zone for n in snapshot.nodes})
    out = []
    model_cache = dict(models) if models is not None else {}
    per_class: dict[str, tuple] = {}   # node class -> (class, model, joules per frame at capacity)
    for name in node_names:
        node = by_name.get(name)
        if node is None:
            continue
        known = per_class.get(node.node_class)
        if known is None:
            cls = snapshot.node_classes[node.node_class]
            if cls.name not in model_cache:
                model_cache[cls.name] = snapshot.model(workload, cls)
            model = model_cache[cls.name]
            usable = model is not None and model.capacity_fps > 0
            known = per_class[node.node_class] = (cls, model, model.replica_power_w(model.capacity_fps)
                                                  / model.capacity_fps if usable else None)
        cls, model, j = known
        if j is None:
            continue
        cap = model.capacity_fps
        awake = name in active_nodes or node.reserved.cpu_m > 0
        if not awake:
            if node.powered_on:   # awake but idle-able: keeping it on for this replica costs its idle
                wake = cls.idle_w - cls.power.sleep_w
            else:                 # asleep: waking it costs that plus the wake energy
                wake = wake_cost_w(cls, snapshot.settings.amortise_s)
            j += wake / cap
        cost = weights[node.zone] * j       # ZoneWeights: an unweighed zone counts as its carbon reads
        planned = name in planned_nodes
        if planned or cls.name in short_classes:
            cost *= PLAN_PREFERENCE
        out.append(NodeCost(name, j, cost, planned))
    return out


def scores_from_costs(costs: list[NodeCost]) -> dict[str, int]:
    """0..10, in proportion to efficiency: the cheapest candidate scores 10, a node twice as dear
    per frame 5, ten times as dear 1.

    Proportional rather than scaled between the cheapest and the dearest: with min-max scaling
    one very dear candidate (a sleeping GPU node) squeezes every cheap node into the same top
    score, and kube-scheduler's own plugins then pick among nodes whose frames cost 6x apart
    (found by the simulator). Proportional scores keep those differences whatever else is listed.
    """
    return dict(zip((c.node for c in costs), candidate_scores([c.weighted_cost for c in costs])))


def candidate_scores(weighted_costs: Sequence[float | None]) -> list[int]:
    """The score of each candidate from its weighted cost per frame (None: not scored, 0), as
    `scores_from_costs` says. A score depends only on the candidate's own cost and the cheapest
    one's, so equal costs score alike: each distinct cost is scored once (thousands of candidates
    share a few node classes and zones, so this is most of the work saved)."""
    distinct = set(weighted_costs)
    distinct.discard(None)
    if not distinct:
        return [0] * len(weighted_costs)
    costs = cast(set[float], distinct)   # None discarded
    lo = min(costs)
    by_cost: dict[float | None, int]
    if lo <= 0:
        by_cost = {c: MAX_SCORE if c <= 0 else 0 for c in costs}
    else:
        by_cost = {c: int(MAX_SCORE * lo / c + 0.5) for c in costs}
    by_cost[None] = 0
    return list(map(by_cost.__getitem__, weighted_costs))


def short_classes(planned_by_class: Mapping[str, int], running_by_class: Mapping[str, int]) -> frozenset[str]:
    """The node classes where fewer replicas of a workload run (started or ready) than the plan
    wants there: new replicas are steered to them (`node_costs`' `short_classes`)."""
    return frozenset(c for c, target in planned_by_class.items() if running_by_class.get(c, 0) < target)


def count_by_class(by_node: Mapping[str, int], class_of: Mapping[str, str]) -> dict[str, int]:
    """Per-node counts summed per node class; nodes `class_of` does not know are left out."""
    out: dict[str, int] = {}
    for node, n in by_node.items():
        cls = class_of.get(node)
        if cls is not None:
            out[cls] = out.get(cls, 0) + n
    return out
