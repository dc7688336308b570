"""The extender door: request bytes in, reply bytes out. Decode, call the decisions, encode.

No HTTP framework here (the aiohttp app in `app.py` is a thin shell around this), so the same
door can be driven directly by tests and the benchmark.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from wattwise.runtime import PlanSource
from wattwise.scheduler import wire
from wattwise.scheduler.decide import HARD, Decider, FilterDecision
from wattwise.scheduler.intent import INVALID, MANAGED, PASSTHROUGH, pod_intent
from wattwise.scheduler.metrics import ExtenderMetrics, reason_category
from wattwise.scheduler.node_cache import NodeCache
from wattwise.scheduler.nodeset import ConversionMemo, NodeSet, nodeset_from_entries
from wattwise.scheduler.replica_counts import ReplicaCounts
from wattwise.scheduler.reply_cache import ReplyCache

log = logging.getLogger(__name__)


@dataclass
class ExtenderService:
    source: PlanSource
    node_cache: NodeCache
    metrics: ExtenderMetrics = field(default_factory=ExtenderMetrics)
    replica_counts: ReplicaCounts | None = None   # running replicas, for the plan's short classes
    _decider: Decider | None = None
    _memo: ConversionMemo = field(default_factory=ConversionMemo)
    _replies: ReplyCache = field(default_factory=ReplyCache)

    def decider(self) -> Decider:
        try:
            view = self.source.current()
        except Exception as e:  # noqa: BLE001 - e.g. the scaler's NotReady before its first plan
            view = None
            if self._decider is None or self._decider.view is not None:
                log.warning("no plan yet (%s): TEE checks only, no scores, until one is made", e)
        if self._decider is None or self._decider.view is not view:
            self._decider = Decider(view, self.replica_counts)
            self._replies.clear()
            if view is not None:
                log.info("plan view changed (plan at t=%s s): decision memo reset", view.plan.now_s)
        return self._decider

    def _nodes_for(self, args: wire.ExtenderArgs) -> NodeSet:
        if args.node_names is not None:
            return self.node_cache.nodes()
        # Full NodeList mode: the request's nodes are the truth; each is converted once per
        # resourceVersion. A node without a name is refused by the wire checks before this.
        return nodeset_from_entries((self._memo.convert(item) for item in args.node_list.get("items") or ()), -1)

    def filter(self, body: bytes) -> bytes:
        args = wire.parse_extender_args(wire.decode(body))
        decider = self.decider()
        intent = pod_intent(args.pod, decider.workloads)
        if intent.kind == PASSTHROUGH:
            self.metrics.count_decisions("filter", PASSTHROUGH, len(args.names))
            return wire.encode(wire.passthrough_filter_result(args))
        if intent.kind == INVALID:
            log.warning("pod %s: %s", _pod_name(args.pod), intent.problem)
        nodes = self._nodes_for(args)
        cacheable = args.node_names is not None
        if cacheable:
            key, names = ("filter", decider, nodes, intent.key), tuple(args.node_names)
            hit = self._replies.get(key, names)
            if hit is not None:
                self._count_filter(intent.kind, hit[1])
                return hit[0]
        decision = decider.filter(intent, args.names, nodes)
        reply = wire.encode(wire.filter_result(args, decision.passed, decision.failed, decision.unresolvable))
        summary = _summary(decision)
        self._count_filter(intent.kind, summary)
        if cacheable:
            self._replies.put(key, names, (reply, summary))
        return reply

    def prioritize(self, body: bytes) -> bytes:
        args = wire.parse_extender_args(wire.decode(body))
        decider = self.decider()
        intent = pod_intent(args.pod, decider.workloads)
        if intent.kind != MANAGED:
            self.metrics.count_decisions("prioritize", intent.kind, len(args.names))
            return wire.encode([])  # no score from WattWise: neutral
        nodes = self._nodes_for(args)
        cacheable = args.node_names is not None
        if cacheable:
            shorts = decider.short_classes(intent.workload.key)
            key, names = ("prioritize", decider, nodes, intent.key, shorts), tuple(args.node_names)
            hit = self._replies.get(key, names)
            if hit is not None:
                self.metrics.count_decisions("prioritize", intent.kind, len(names))
                return hit
        scores = decider.scores(intent, args.names, nodes)
        self.metrics.count_decisions("prioritize", intent.kind, len(scores))
        reply = wire.encode(wire.host_priority_list(scores))
        if cacheable:
            self._replies.put(key, names, reply)
        return reply

    def preempt(self, body: bytes) -> bytes:
        """Keep only the candidate nodes the pod could run on at all: evicting victims on a node
        whose TEE the pod does not allow would free room the pod can never use."""
        args = wire.parse_preemption_args(wire.decode(body))
        decider = self.decider()
        intent = pod_intent(args.pod, decider.workloads)
        if intent.kind == PASSTHROUGH:
            return wire.encode(wire.preemption_result(args.meta_victims))
        nodes = self.node_cache.nodes()
        decision = decider.filter(intent, list(args.meta_victims), nodes)
        keep = {n: v for n, v in args.meta_victims.items() if n not in decision.unresolvable}
        self.metrics.count_decisions("preempt", intent.kind, len(keep))
        return wire.encode(wire.preemption_result(keep))

    def _count_filter(self, kind: str, summary: "_FilterSummary") -> None:
        m = self.metrics
        m.count_decisions("filter", f"{kind}:passed", summary.passed)
        m.count_decisions("filter", f"{kind}:failed", summary.failed)
        m.count_decisions("filter", f"{kind}:unresolvable", summary.unresolvable)
        for reasons, severity in ((summary.soft_reasons, 0), (summary.hard_reasons, HARD)):
            counts: Counter = Counter()
            for reason, n in reasons.items():  # few distinct reasons
                counts[reason_category(reason, severity)] += n
            for cat, n in counts.items():
                m.reasons.labels(cat).inc(n)


@dataclass(frozen=True)
class _FilterSummary:
    passed: int
    failed: int
    unresolvable: int
    soft_reasons: Counter
    hard_reasons: Counter


def _summary(d: FilterDecision) -> _FilterSummary:
    soft, hard = d.reason_counts or (Counter(d.failed.values()), Counter(d.unresolvable.values()))
    return _FilterSummary(len(d.passed), len(d.failed), len(d.unresolvable), soft, hard)


def _pod_name(pod: dict) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace', 'default')}/{meta.get('name', '?')}"
