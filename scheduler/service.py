"""The extender door: request bytes in, reply bytes out. Decode, call the core, encode.

Each verb decodes the body once, reads the pod's intent once (`models.pod_intent`), makes one
call to the current plan's `models.placement.Placement` and encodes its answer. No HTTP framework
here (the aiohttp app in `app.py` is a thin shell around this), so the same door can be driven
directly by tests and benchmarks. An `Answer` carries what to count in the metrics; the app
counts it, so this may run on any one thread.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Mapping

from wattwise.models.placement import FilterDecision, NodeEntry, Placement
from wattwise.models.pod_intent import PodIntent, PodKind, pod_intent
from wattwise.runtime import PlanSource, PlanView
from wattwise.scheduler import wire
from wattwise.scheduler.metrics import ExtenderMetrics
from wattwise.scheduler.node_cache import NodeCache
from wattwise.scheduler.nodeset import ConversionMemo
from wattwise.scheduler.replica_counts import ReplicaCounts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    body: bytes
    decisions: Mapping[str, int] = field(default_factory=dict)   # nodes per decision label
    reasons: Mapping[str, int] = field(default_factory=dict)     # filtered-out nodes per reason category

    def count(self, metrics: ExtenderMetrics, verb: str) -> None:
        for label, n in self.decisions.items():
            metrics.count_decisions(verb, label, n)
        for category, n in self.reasons.items():
            metrics.count_reason(category, n)


@dataclass
class ExtenderService:
    source: PlanSource
    node_cache: NodeCache
    metrics: ExtenderMetrics = field(default_factory=ExtenderMetrics)
    replica_counts: ReplicaCounts | None = None   # running replicas, for the plan's short classes
    _placement: tuple[PlanView | None, Placement] | None = None
    _objective_placements: dict[int, tuple[PlanView, Placement]] = field(default_factory=dict)
    _memo: ConversionMemo = field(default_factory=ConversionMemo)

    def placement(self) -> Placement:
        """The current plan's placement answers (a new plan view: a new, empty memo)."""
        try:
            view = self.source.current()
        except Exception as e:  # noqa: BLE001 - e.g. the scaler's NotReady before its first plan
            view = None
            if self._placement is None or self._placement[0] is not None:
                log.warning("no plan yet (%s): TEE checks only, no scores, until one is made", wire.quote(e, 200))
        if self._placement is None or self._placement[0] is not view:
            placement = Placement(view.snapshot, view.plan) if view is not None else Placement()
            self._placement = (view, placement)
            self._objective_placements = {}
            if view is not None:
                log.info("plan view changed (plan at t=%s s): placement memo reset", view.plan.now_s)
        return self._placement[1]

    def _placement_for(self, pod) -> tuple[PodIntent, Placement]:
        """The pod's intent and the placement of the plan its workload follows: the plan of the
        objective its ScaledObject asks for, the one KEDA counts its replicas in."""
        placement = self.placement()
        intent = pod_intent(pod, placement.workloads)
        view = self._placement[0] if self._placement is not None else None
        if view is None or intent.workload is None:
            return intent, placement
        own = view.for_workload(intent.workload.key)
        if own is view:
            return intent, placement
        cached = self._objective_placements.get(id(own))
        if cached is None or cached[0] is not own:
            cached = self._objective_placements[id(own)] = (own, Placement(own.snapshot, own.plan))
        return intent, cached[1]

    # -- the verbs -------------------------------------------------------------------------------
    def filter(self, body: bytes) -> Answer:
        args = wire.parse_extender_args(wire.decode(body))
        intent, placement = self._placement_for(args.pod)
        if intent.kind is PodKind.PASSTHROUGH:
            return Answer(wire.encode(wire.passthrough_filter_result(args)),
                          {intent.kind.value: len(args.names)})
        if intent.kind is PodKind.INVALID:
            log.warning("pod %s: %s", _pod_name(args.pod), intent.problem)
        d = placement.verdicts(intent, args.names, self._nodes_for(args), self._stale(args))
        reply = wire.filter_result(args, d.passed, d.failed, d.unresolvable)
        return Answer(wire.encode(reply), *_filter_counts(intent, d))

    def prioritize(self, body: bytes) -> Answer:
        args = wire.parse_extender_args(wire.decode(body))
        intent, placement = self._placement_for(args.pod)
        nodes = self._nodes_for(args) if intent.scored else {}
        scores = placement.scores(intent, args.names, nodes, self._running(intent))
        scored = len(scores) if intent.scored else len(args.names)
        return Answer(wire.encode(wire.host_priority_list(scores)), {intent.kind.value: scored})

    def preempt(self, body: bytes) -> Answer:
        """Keep only the candidate nodes the pod could run on at all: evicting victims on a node
        whose TEE the pod does not allow would free room the pod can never use."""
        args = wire.parse_preemption_args(wire.decode(body))
        intent, placement = self._placement_for(args.pod)
        names = list(args.meta_victims)
        keep = placement.preemption_nodes(intent, names, self.node_cache.nodes().entries, self.node_cache.stale())
        result = wire.preemption_result({n: args.meta_victims[n] for n in keep})
        counted = {} if intent.kind is PodKind.PASSTHROUGH else {intent.kind.value: len(keep)}
        return Answer(wire.encode(result), counted)

    # -- what the core is called with --------------------------------------------------------------
    def _nodes_for(self, args: wire.ExtenderArgs) -> Mapping[str, NodeEntry]:
        if args.node_names is not None:
            return self.node_cache.nodes().entries
        # Full NodeList mode: the request's nodes are the truth; each is converted once per
        # resourceVersion. A node without a name is refused by the wire checks before this.
        return {e.name: e for e in map(self._memo.convert, args.node_list.get("items") or ())}

    def _stale(self, args: wire.ExtenderArgs) -> str:
        """Why the node cache may be out of date, when the request leaves the nodes to it (names)."""
        return self.node_cache.stale() if args.node_names is not None else ""

    def _running(self, intent: PodIntent) -> Mapping[str, int] | None:
        if self.replica_counts is None or intent.workload is None:
            return None
        return self.replica_counts.by_node(intent.workload.key)


def _filter_counts(intent: PodIntent, d: FilterDecision) -> tuple[dict[str, int], dict[str, int]]:
    """Nodes per `kind:outcome` and filtered-out nodes per reason category, the metrics' labels."""
    decisions: dict[str, int] = {}
    reasons: dict[str, int] = {}
    for (outcome, category), n in d.tally.items():
        label = f"{intent.kind}:{outcome}"
        decisions[label] = decisions.get(label, 0) + n
        if category:
            reasons[category] = reasons.get(category, 0) + n
    return decisions, reasons


def _pod_name(pod: dict) -> str:
    meta = pod.get("metadata") or {}
    return f"{wire.quote(meta.get('namespace', 'default'), repr_=False)}/{wire.quote(meta.get('name', '?'), repr_=False)}"
