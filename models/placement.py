"""Placement answers for one plan: a pod's intent and candidate nodes in, filter verdicts and
prioritize scores out (what kube-scheduler asks the extender).

Every verdict comes from `eligibility` (so the planner and the filter never disagree) and every
score from `scoring` (so the planner's rankings, the simulator and prioritize agree). This module
chooses which of them applies to which pod, and remembers the answers.

Memo: one `Placement` per plan. Within it each node's verdict is computed once per pod intent
(`PodIntent.key`), and each node's cost once per intent and set of short classes, in a table kept
with the node map it was computed for. A new node map (a node changed in the API server) reuses
every answer whose `NodeEntry` is the same object and computes the rest. Tables are dropped,
least recently used first, once they hold more than `max_entries` node answers in all: by
default room for a few tables per workload of every node (`memo_entries_for`), so a cluster's
pods of every workload in turn find their answers until the next plan.
"""

from __future__ import annotations

import enum
from collections import Counter, OrderedDict
from dataclasses import dataclass, replace
from itertools import compress, repeat
from operator import is_
from typing import Mapping, Sequence

from wattwise.models.cluster import Node, NodeClass
from wattwise.models.costs import zone_weights
from wattwise.models.eligibility import Reason, hard_reason, soft_reason, tee_reason
from wattwise.models.plan import Plan
from wattwise.models.pod_intent import PodIntent, PodKind, WorkloadIndex
from wattwise.models.scoring import candidate_scores, count_by_class, node_costs, short_classes
from wattwise.models.snapshot import Snapshot

# Node answers kept per plan, at least: 50 tables of 5,000 nodes, e.g. 25 kinds of pod each
# filtered and scored. An answer takes ~30 bytes in its table (tracemalloc, 5,000 nodes: the
# verdicts and reasons themselves are shared), so ~8 MB in all.
DEFAULT_MAX_ENTRIES = 250_000
# A plan's workloads each get room for this many tables of every node: its filter verdicts, its
# prioritize costs, and one more for a second set of short classes (or a pod whose own TEE
# demand differs from its workload's). 1,000 workloads x 200 nodes: 600,000 answers, ~18 MB.
TABLES_PER_WORKLOAD = 3
# ... but no more than this in all (~60 MB): past it, tables are dropped least recently used first.
MAX_ENTRIES_CAP = 2_000_000


def memo_entries_for(workloads: int, nodes: int) -> int:
    """The answers a plan's memo keeps: every workload's tables for every node, within bounds.
    A memo smaller than the workloads' tables is emptied, table by table, by pods of each workload
    in turn (kube-scheduler's queue), so every call then misses."""
    return min(MAX_ENTRIES_CAP, max(DEFAULT_MAX_ENTRIES, TABLES_PER_WORKLOAD * (workloads + 1) * nodes))


class Outcome(enum.StrEnum):
    """A node's section of kube-scheduler's ExtenderFilterResult; the value is the metrics' label."""

    PASSED = "passed"
    FAILED = "failed"                # FailedNodes: may pass later (capacity, cordon, cache lag)
    UNRESOLVABLE = "unresolvable"    # FailedAndUnresolvableNodes: preemption cannot help (TEE, SLA)


@dataclass(frozen=True, eq=False)
class Verdict:
    """One node's filter answer. Equal verdicts are one object within a `Placement` (it counts
    them by identity)."""

    outcome: Outcome
    reason: str = ""

    @property
    def category(self) -> str:
        """What the reason is counted under: the category it was written with (`eligibility.Reason`)."""
        if self.outcome is Outcome.PASSED:
            return ""
        return getattr(self.reason, "category", None) or (
            "other_hard" if self.outcome is Outcome.UNRESOLVABLE else "other_soft")


PASS = Verdict(Outcome.PASSED)


@dataclass(frozen=True, eq=False)
class NodeEntry:
    """A node as the caller knows it now (from the API server or from a request's NodeList),
    converted through the core's label mapping. `error` is set (and node/node_class are None)
    when its JSON could not be read: such a node fails with that reason."""

    name: str
    resource_version: str
    node: Node | None
    node_class: NodeClass | None
    error: str = ""


# Unresolvable: evicting pods there cannot help a pod whose TEE nobody has checked on it (and as
# merely failed, kube-scheduler's preemption would evict victims on it). It lasts one cycle: the
# next, once the node cache has the node, checks it.
def needs_tee(intent: PodIntent) -> bool:
    """Whether the pod must run in a TEE: its own demand, or its workload's."""
    return intent.requirement.required or (intent.workload is not None and intent.workload.confidentiality.required)


UNKNOWN_NODE = Reason("node(s) not yet in the WattWise extender's node cache (not seen from the API server) "
                      "so not checked and not offered", "unknown_node")


@dataclass
class FilterDecision:
    passed: list[str]                # in request order
    failed: dict[str, str]           # soft reasons (in no particular order)
    unresolvable: dict[str, str]     # hard reasons (likewise)
    tally: dict[tuple[Outcome, str], int]   # nodes per (outcome, reason category)


NO_SNAPSHOT = Snapshot(now_s=0.0, node_classes={}, nodes=(), workloads=())
_MISSING = object()


@dataclass
class _Table:
    nodes: Mapping[str, NodeEntry]   # the node map the answers are for
    answers: dict


class Placement:
    """Filter verdicts and prioritize scores for one plan (or none yet), memoised per node."""

    def __init__(self, snapshot: Snapshot | None = None, plan: Plan | None = None,
                 max_entries: int | None = None):
        """`plan` None: no plan yet. No workload is known then, so labelled pods get the TEE check
        only (like unmanaged Confidential Containers pods) and no scores. `max_entries` None: room
        for every workload's tables of every node of the snapshot (`memo_entries_for`)."""
        self.snapshot = snapshot if snapshot is not None else NO_SNAPSHOT
        self.plan = plan
        self.max_entries = max_entries if max_entries is not None else memo_entries_for(
            len(self.snapshot.workloads), len(self.snapshot.nodes))
        self.workloads = WorkloadIndex(self.snapshot.workloads if plan is not None else ())
        self._snapshot_nodes = {n.name: n for n in self.snapshot.nodes}
        self._class_of = {n.name: n.node_class for n in self.snapshot.nodes}
        self._active = frozenset(plan.active_nodes) if plan is not None else frozenset()
        # the zone weights the planner ranks with: a node's cost is then its own, whatever else
        # is a candidate
        self._weights = zone_weights(self.snapshot, {n.zone for n in self.snapshot.nodes})
        self._models: dict[tuple[str, str], object] = {}
        self._decision_nodes: dict[str, tuple[NodeEntry, Node, NodeClass]] = {}
        self._verdict_pool: dict[tuple[Outcome, str, str], Verdict] = {}
        self._tables: OrderedDict[tuple, _Table] = OrderedDict()
        self._entries = 0

    # -- the answers -----------------------------------------------------------------------------
    def verdicts(self, intent: PodIntent, names: Sequence[str], nodes: Mapping[str, NodeEntry],
                 stale: str = "") -> FilterDecision:
        """Each candidate's filter answer, `names` in request order; `nodes` maps names to what is
        known of them (a name it lacks fails: not checked). A pass-through pod passes everywhere.
        `stale`: why `nodes` may no longer be what the API server holds (e.g. not heard from for
        minutes): a pod that needs a TEE is then refused everywhere, as unresolvable (no eviction
        either), since a TEE withdrawn since would not be seen; others are judged as usual."""
        if intent.kind is PodKind.PASSTHROUGH:
            return FilterDecision(list(names), {}, {}, {(Outcome.PASSED, ""): len(names)})
        if stale and needs_tee(intent):
            reason = Reason(f"node(s) not checked: {stale} (a TEE withdrawn since would not be seen)", "stale_cache")
            return FilterDecision([], {}, dict.fromkeys(names, reason),
                                  {(Outcome.UNRESOLVABLE, reason.category): len(names)} if names else {})
        if intent.kind is PodKind.INVALID:
            verdict = self._pooled(Outcome.UNRESOLVABLE, intent.problem)
            return FilterDecision([], {}, dict.fromkeys(names, intent.problem),
                                  {(verdict.outcome, verdict.category): len(names)} if names else {})
        table = self._verdict_table(intent, nodes)
        # one look-up per name, then every list and dict made by C loops: a verdict is one object
        # per distinct answer, so names are picked per verdict by identity
        verdicts = list(map(table.get, names, repeat(self._pooled(Outcome.UNRESOLVABLE, UNKNOWN_NODE))))
        counts = Counter(verdicts)
        passed = list(compress(names, map(is_, verdicts, repeat(PASS)))) if PASS in counts else []
        failed: dict[str, str] = {}
        unresolvable: dict[str, str] = {}
        tally: dict[tuple[Outcome, str], int] = {}
        for verdict, n in counts.items():
            kind = (verdict.outcome, verdict.category)
            tally[kind] = tally.get(kind, 0) + n
            if verdict is not PASS:
                section = unresolvable if verdict.outcome is Outcome.UNRESOLVABLE else failed
                section.update(dict.fromkeys(compress(names, map(is_, verdicts, repeat(verdict))), verdict.reason))
        return FilterDecision(passed, failed, unresolvable, tally)

    def scores(self, intent: PodIntent, names: Sequence[str], nodes: Mapping[str, NodeEntry],
               running_by_node: Mapping[str, int] | None = None) -> dict[str, int]:
        """0..10 per candidate for a managed pod (any other: empty, i.e. neutral). Candidates that
        fail a hard check, or that `nodes` lacks, score 0 and do not stretch the scale.
        `running_by_node`: the workload's replicas running now, for the classes the plan is short
        of (None: not known, so none is)."""
        if not intent.scored or intent.workload is None:
            return {}
        shorts = self.short_classes(intent.workload.key, running_by_node)
        costs = self._cost_table(intent, shorts, nodes)
        return dict(zip(names, candidate_scores(list(map(costs.get, names)))))

    def preemption_nodes(self, intent: PodIntent, names: Sequence[str], nodes: Mapping[str, NodeEntry],
                         stale: str = "") -> list[str]:
        """The candidates where evicting pods could make room the pod can use: not ruled out for good."""
        decision = self.verdicts(intent, names, nodes, stale)
        return [n for n in names if n not in decision.unresolvable]

    def short_classes(self, workload_key: str, running_by_node: Mapping[str, int] | None) -> frozenset[str]:
        """Classes where the plan wants more replicas than run now (the snapshot's nodes only)."""
        wp = self.plan.workloads.get(workload_key) if self.plan is not None else None
        if wp is None or running_by_node is None:
            return frozenset()
        return short_classes(wp.by_class, count_by_class(running_by_node, self._class_of))

    # -- one node --------------------------------------------------------------------------------
    def decision_node(self, entry: NodeEntry) -> tuple[Node, NodeClass]:
        """The live node (TEE readiness, allocatable, schedulable, taints) with what only the
        plan's snapshot knows about it: its grid zone (carbon is weighed by it), the resources
        other pods reserve, and its node class with the class's real power curve and energy
        models (by name). A node the snapshot does not know keeps what its labels say."""
        hit = self._decision_nodes.get(entry.name)
        if hit is not None and hit[0] is entry:
            return hit[1], hit[2]
        node, cls = entry.node, entry.node_class
        if node is None or cls is None:
            raise ValueError(f"node {entry.name!r} could not be read: it has no decision node")
        known = self._snapshot_nodes.get(entry.name)
        if known is not None:
            node = replace(node, node_class=known.node_class, zone=known.zone, reserved=known.reserved,
                           per_node_reserved=known.per_node_reserved)
        cls = self.snapshot.node_classes.get(node.node_class) or cls
        if len(self._decision_nodes) >= self.max_entries:
            self._decision_nodes.clear()
        self._decision_nodes[entry.name] = (entry, node, cls)
        return node, cls

    def _verdict(self, intent: PodIntent, entry: NodeEntry) -> Verdict:
        if entry.node is None or entry.node_class is None:
            return self._pooled(Outcome.UNRESOLVABLE, entry.error)
        node, cls = self.decision_node(entry)
        workload = intent.workload
        if intent.kind is PodKind.TEE_ONLY or workload is None:
            reason = tee_reason(intent.requirement, node, cls)
            return self._pooled(Outcome.UNRESOLVABLE, reason) if reason else PASS
        reason = None
        if intent.requirement.required and intent.requirement != workload.confidentiality:
            reason = tee_reason(intent.requirement, node, cls)
        reason = reason or hard_reason(workload, node, cls, self._model(workload, cls))
        if reason:
            return self._pooled(Outcome.UNRESOLVABLE, reason)
        reason = soft_reason(workload, node)
        return self._pooled(Outcome.FAILED, reason) if reason else PASS

    def _pooled(self, outcome: Outcome, reason: str) -> Verdict:
        key = (outcome, reason, getattr(reason, "category", ""))
        verdict = self._verdict_pool.get(key)
        if verdict is None:
            verdict = self._verdict_pool[key] = Verdict(outcome, reason)
        return verdict

    def _model(self, workload, cls: NodeClass):
        key = (workload.key, cls.name)
        if key not in self._models:
            self._models[key] = self.snapshot.model(workload, cls)
        return self._models[key]

    # -- tables ----------------------------------------------------------------------------------
    def _verdict_table(self, intent: PodIntent, nodes: Mapping[str, NodeEntry]) -> dict[str, Verdict]:
        key = ("verdicts", intent.key)
        table = self._table(key)
        if table is not None and table.nodes is nodes:
            return table.answers
        old_nodes, old = (table.nodes, table.answers) if table is not None else ({}, {})
        answers = {}
        for name, entry in nodes.items():
            verdict = old.get(name) if old_nodes.get(name) is entry else None
            answers[name] = verdict if verdict is not None else self._verdict(intent, entry)
        self._keep(key, nodes, answers)
        return answers

    def _cost_table(self, intent: PodIntent, shorts: frozenset[str], nodes: Mapping[str, NodeEntry]) -> dict:
        """Weighted cost per frame of each node not ruled out by a hard check (None: no cost)."""
        verdicts = self._verdict_table(intent, nodes)
        key = ("costs", intent.key, shorts)
        table = self._table(key)
        if table is not None and table.nodes is nodes:
            return table.answers
        old_nodes, old = (table.nodes, table.answers) if table is not None else ({}, {})
        answers, missing = {}, []
        for name, entry in nodes.items():
            if verdicts[name].outcome is Outcome.UNRESOLVABLE:
                continue
            cost = old.get(name, _MISSING) if old_nodes.get(name) is entry else _MISSING
            if cost is _MISSING:
                missing.append(name)
            else:
                answers[name] = cost
        if missing:
            answers.update(self._costs(intent.workload, missing, nodes, shorts))
        self._keep(key, nodes, answers)
        return answers

    def _costs(self, workload, names: list[str], nodes: Mapping[str, NodeEntry], shorts) -> dict[str, float | None]:
        by_name, classes = {}, dict(self.snapshot.node_classes)
        for n in names:
            node, cls = self.decision_node(nodes[n])
            by_name[n] = node
            classes.setdefault(cls.name, cls)
        sub = replace(self.snapshot, node_classes=classes)
        wp = self.plan.workloads.get(workload.key) if self.plan is not None else None
        planned = frozenset(n for n, c in (wp.by_node.items() if wp else ()) if c > 0)
        got = {c.node: c.weighted_cost for c in node_costs(sub, workload, names, active_nodes=self._active,
                                                            planned_nodes=planned, short_classes=shorts,
                                                            by_name=by_name, weights=self._weights)}
        return {n: got.get(n) for n in names}

    def _table(self, key: tuple) -> _Table | None:
        table = self._tables.get(key)
        if table is not None:
            self._tables.move_to_end(key)
        return table

    def _keep(self, key: tuple, nodes: Mapping[str, NodeEntry], answers: dict) -> None:
        old = self._tables.pop(key, None)
        if old is not None:
            self._entries -= len(old.answers)
        self._tables[key] = _Table(nodes, answers)
        self._entries += len(answers)
        while self._entries > self.max_entries and len(self._tables) > 1:
            _, dropped = self._tables.popitem(last=False)
            self._entries -= len(dropped.answers)

    @property
    def memo_entries(self) -> int:
        """Node answers held now (at most `max_entries`, or one table when a table alone is larger)."""
        return self._entries
