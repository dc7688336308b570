"""The extender door: request bytes in, reply bytes out. Decode, call the decisions, encode.

No HTTP framework here (the aiohttp app in `app.py` is a thin shell around this), so the same
door can be driven directly by tests and the benchmark.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from wattwise.runtime import PlanSource
from wattwise.scheduler import wire
from wattwise.scheduler.decide import HARD, PASS, SOFT, Decider
from wattwise.scheduler.intent import INVALID, MANAGED, PASSTHROUGH, TEE_ONLY, PodIntent, pod_intent
from wattwise.scheduler.metrics import ExtenderMetrics
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
        fast = self._names_fast(body, (MANAGED, TEE_ONLY))
        if fast is not None:
            decider, intent, positions, nodes = fast
            reply, tally = decider.filter_reply(intent, positions, nodes)
            self._count_filter(intent.kind, tally)
            return reply
        args = wire.parse_extender_args(wire.decode(body))
        decider = self.decider()
        intent = pod_intent(args.pod, decider.workloads)
        if intent.kind == PASSTHROUGH:
            self.metrics.count_decisions("filter", PASSTHROUGH, len(args.names))
            return wire.encode(wire.passthrough_filter_result(args))
        if intent.kind == INVALID:
            log.warning("pod %s: %s", _pod_name(args.pod), intent.problem)
        nodes = self._nodes_for(args)
        reply, tally = self._answer(("filter", decider, nodes, intent.key), args,
                                    lambda: self._filter_answer(decider, intent, args, nodes))
        self._count_filter(intent.kind, tally)
        return reply

    def prioritize(self, body: bytes) -> bytes:
        fast = self._names_fast(body, (MANAGED,))
        if fast is not None:
            decider, intent, positions, nodes = fast
            self.metrics.count_decisions("prioritize", intent.kind, len(positions))
            return decider.priority_reply(intent, positions, nodes)
        args = wire.parse_extender_args(wire.decode(body))
        decider = self.decider()
        intent = pod_intent(args.pod, decider.workloads)
        if intent.kind != MANAGED:
            self.metrics.count_decisions("prioritize", intent.kind, len(args.names))
            return wire.encode([])  # no score from WattWise: neutral
        nodes = self._nodes_for(args)
        key = ("prioritize", decider, nodes, intent.key, decider.short_classes(intent.workload.key))
        reply, scored = self._answer(key, args, lambda: self._priority_answer(decider, intent, args, nodes))
        self.metrics.count_decisions("prioritize", intent.kind, scored)
        return reply

    def _names_fast(self, body: bytes, kinds: tuple[str, ...]) -> tuple | None:
        """(decider, intent, positions, nodes) of a names-mode request read without decoding its
        names (fragments.NameIndex.find), for a pod of one of `kinds`; None: the general path."""
        head = wire.names_head(body)
        if head is None:
            return None
        decider = self.decider()
        intent = pod_intent(head.pod, decider.workloads)
        if intent.kind not in kinds:
            return None
        nodes = self.node_cache.nodes()
        positions = decider.name_index(nodes).find(body, head.names_at)
        return None if positions is None else (decider, intent, positions, nodes)

    def _answer(self, key: tuple, args: wire.ExtenderArgs, compute: Callable[[], tuple]) -> tuple:
        """`compute()`, or in names mode its result for an earlier request with the same key and names."""
        if args.names_key is None:
            return compute()
        answer = self._replies.get(key, args.names_key)
        if answer is None:
            answer = compute()
            self._replies.put(key, args.names_key, answer)
        return answer

    @staticmethod
    def _filter_answer(decider: Decider, intent: PodIntent, args: wire.ExtenderArgs,
                       nodes: NodeSet) -> tuple[bytes, Mapping[tuple[int, str], int]]:
        """The encoded reply and its tally: joined from per-node fragments for cached nodes, else
        encoded from the general path's decision."""
        if args.node_names is not None:
            positions = decider.name_index(nodes).positions(args.node_names)
            joined = decider.filter_reply(intent, positions, nodes) if positions is not None else None
            if joined is not None:
                return joined
        d = decider.filter(intent, args.names, nodes)
        return wire.encode(wire.filter_result(args, d.passed, d.failed, d.unresolvable)), d.tally()

    @staticmethod
    def _priority_answer(decider: Decider, intent: PodIntent, args: wire.ExtenderArgs,
                         nodes: NodeSet) -> tuple[bytes, int]:
        """The encoded reply and how many nodes it scores (as `_filter_answer`)."""
        if args.node_names is not None:
            positions = decider.name_index(nodes).positions(args.node_names)
            if positions is not None:
                return decider.priority_reply(intent, positions, nodes), len(positions)
        scores = decider.scores(intent, args.names, nodes)
        return wire.encode(wire.host_priority_list(scores)), len(scores)

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

    def _count_filter(self, kind: str, tally: Mapping[tuple[int, str], int]) -> None:
        m = self.metrics
        for (outcome, category), n in tally.items():
            m.count_decisions("filter", f"{kind}:{_OUTCOME_LABELS[outcome]}", n)
            if category:
                m.count_reason(category, n)


_OUTCOME_LABELS = {PASS: "passed", SOFT: "failed", HARD: "unresolvable"}


def _pod_name(pod: dict) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace', 'default')}/{meta.get('name', '?')}"
