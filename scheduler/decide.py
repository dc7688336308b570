"""The extender's decisions, with no HTTP: pod intent + candidate node names -> verdicts and scores.

Every verdict comes from `models.eligibility` (so the planner and the filter never disagree) and
every score from `models.scoring` (so the planner's rankings, the simulator and prioritize agree).
This module only chooses which core function applies to which pod, and memoises the answers. In
names mode (nodeCacheCapable: true) the answers are also kept encoded, per node, and a reply
is written from the requested nodes' entries (`fragments.py`); `filter` and `scores` answer the rest (full
NodeLists, names the cache does not know, repeated names) and define what the joined replies say.

Memo validity: one `Decider` per `PlanView` (a new plan means a new Decider). Within it, answers
are kept per node together with the `NodeEntry` they were computed from; a node whose entry was
replaced (it changed in the API server) is recomputed, the rest stay.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from itertools import repeat

import numpy as np

from wattwise.models.cluster import Node, NodeClass
from wattwise.models.costs import zone_weights
from wattwise.models.eligibility import Reason, hard_reason, soft_reason, tee_reason
from wattwise.models.scoring import NodeCost, node_costs, scores_from_costs
from wattwise.models.snapshot import Snapshot
from wattwise.runtime import PlanView
from wattwise.scheduler.fragments import (FAILED, PASSED, UNRESOLVABLE, FilterEntries, FilterFragments, NameIndex,
                                          Positions, ScoreFragments)
from wattwise.scheduler.intent import INVALID, MANAGED, TEE_ONLY, PodIntent, WorkloadIndex
from wattwise.scheduler.metrics import reason_category
from wattwise.scheduler.nodeset import NodeEntry, NodeSet
from wattwise.scheduler.replica_counts import ReplicaCounts

PASS, SOFT, HARD = 0, 1, 2
NO_SNAPSHOT = Snapshot(now_s=0.0, node_classes={}, nodes=(), workloads=())
OK = (PASS, "")
_SECTION = {PASS: PASSED, SOFT: FAILED, HARD: UNRESOLVABLE}


@dataclass
class FilterDecision:
    passed: list[str]
    failed: dict[str, str]          # soft: may pass later (capacity, cordon, cache lag)
    unresolvable: dict[str, str]    # hard: preemption cannot help (TEE, accelerator, SLA)

    def tally(self) -> Counter:
        """Nodes per `verdict_kind` (what `Decider.filter_reply` counts too)."""
        tally = Counter({verdict_kind(PASS, ""): len(self.passed)})
        tally.update(verdict_kind(SOFT, reason) for reason in self.failed.values())
        tally.update(verdict_kind(HARD, reason) for reason in self.unresolvable.values())
        return +tally


def verdict_kind(outcome: int, reason: str) -> tuple[int, str]:
    """What the filter metrics count a verdict under: its outcome and its reason's category."""
    return outcome, (reason_category(reason, outcome == HARD) if outcome != PASS else "")


def _describe(verdict: tuple[int, str]) -> tuple[int, str, tuple[int, str]]:
    """A verdict's section of the filter reply, reason and kind (see FilterEntries)."""
    outcome, reason = verdict
    return _SECTION[outcome], reason, verdict_kind(outcome, reason)


UNKNOWN_NODE = Reason("node(s) not yet in the WattWise extender's node cache (not seen from the API server) "
                      "so not checked and not offered", "unknown_node")


class Decider:
    """Decisions for one plan view; node sets are passed per call (cache or request)."""

    def __init__(self, view: PlanView | None, replica_counts: ReplicaCounts | None = None):
        """`view` None: no plan yet. No workload is known then, so labelled pods get the TEE
        check only (like unmanaged Confidential Containers pods) and no scores."""
        self.view = view
        self.snapshot = view.snapshot if view is not None else NO_SNAPSHOT
        self.workloads = WorkloadIndex(self.snapshot.workloads)
        self._snapshot_nodes = {n.name: n for n in self.snapshot.nodes}
        self._active = frozenset(view.plan.active_nodes) if view is not None else frozenset()
        # the zone weights the planner ranks with: every node's cost is then its own, whatever
        # else is a candidate
        self._weights = zone_weights(self.snapshot, {n.zone for n in self.snapshot.nodes})
        self._counts = replica_counts
        self._models: dict[tuple[str, str], object] = {}
        self._verdicts: dict[tuple, dict[str, tuple[NodeEntry, tuple[int, str]]]] = {}
        self._costs: dict[tuple, dict[str, tuple[NodeEntry, NodeCost | None]]] = {}
        self._decision_nodes: dict[str, tuple[NodeEntry, Node, NodeClass]] = {}
        self._tables: dict[tuple, _VerdictTable] = {}
        self._cost_tables: dict[tuple, _CostTable] = {}
        self._index: tuple[NodeSet, NameIndex] | None = None
        self._filter_entries: dict[tuple, FilterEntries] = {}

    # -- the node as decisions see it -------------------------------------------------------------
    def decision_node(self, entry: NodeEntry) -> tuple[Node, NodeClass]:
        """ADAPTION (scheduler side, see the module notes in docs/extender.md): the live node from
        the API server (TEE readiness, allocatable, schedulable) with what only the plan's
        snapshot knows about it: the resources other pods reserve, and its node class with the
        class's real power curve and energy models (by name). A node the snapshot does not know
        keeps the class derived from its labels."""
        hit = self._decision_nodes.get(entry.name)
        if hit is not None and hit[0] is entry:
            return hit[1], hit[2]
        node, cls = entry.node, entry.node_class
        known = self._snapshot_nodes.get(entry.name)
        if known is not None:
            node = replace(node, node_class=known.node_class, reserved=known.reserved)
        cls = self.snapshot.node_classes.get(node.node_class) or cls
        self._decision_nodes[entry.name] = (entry, node, cls)
        return node, cls

    def _model(self, intent: PodIntent, cls: NodeClass):
        key = (intent.workload.key, cls.name)
        if key not in self._models:
            self._models[key] = self.snapshot.model(intent.workload, cls)
        return self._models[key]

    # -- filter ----------------------------------------------------------------------------------
    def verdict(self, intent: PodIntent, entry: NodeEntry) -> tuple[int, str]:
        if entry.node is None:
            return HARD, entry.error
        node, cls = self.decision_node(entry)
        if intent.kind == TEE_ONLY:
            reason = tee_reason(intent.requirement, node, cls)
            return (HARD, reason) if reason else OK
        workload = intent.workload
        reason = None
        if intent.requirement.required and intent.requirement != workload.confidentiality:
            reason = tee_reason(intent.requirement, node, cls)
        reason = reason or hard_reason(workload, node, cls, self._model(intent, cls))
        if reason:
            return HARD, reason
        reason = soft_reason(workload, node)
        return (SOFT, reason) if reason else OK

    def _table(self, intent: PodIntent, nodes: NodeSet) -> "_VerdictTable":
        """Verdicts for every node of `nodes`, kept while the node set is the same object."""
        table = self._tables.get(intent.key)
        if table is not None and table.nodes is nodes:
            return table
        memo = self._verdicts.setdefault(intent.key, {})
        verdicts = {}
        for name, entry in nodes.entries.items():
            hit = memo.get(name)
            if hit is None or hit[0] is not entry:
                hit = memo[name] = (entry, self.verdict(intent, entry))
            verdicts[name] = hit[1]
        table = _VerdictTable(nodes, verdicts)
        if nodes.version >= 0:  # a request's own NodeList (version -1) is not kept
            self._tables[intent.key] = table
        return table

    def filter(self, intent: PodIntent, names, nodes: NodeSet) -> FilterDecision:
        """`names` in request order. Pass-through pods must not reach here (no work for them)."""
        if intent.kind == INVALID:
            return FilterDecision([], {}, {n: intent.problem for n in names})
        verdicts = self._table(intent, nodes).verdicts
        passed, failed, unresolvable = [], {}, {}
        for n in names:
            v = verdicts.get(n)
            if v is None:
                failed[n] = UNKNOWN_NODE
            elif v[0] == PASS:
                passed.append(n)
            elif v[0] == HARD:
                unresolvable[n] = v[1]
            else:
                failed[n] = v[1]
        return FilterDecision(passed, failed, unresolvable)

    # -- names mode: replies written from per-node fragments (fragments.py) ------------------------
    def filter_reply(self, intent: PodIntent, positions: Positions, nodes: NodeSet) -> tuple[bytes, dict] | None:
        """The encoded reply of `filter` for the cached nodes at `positions` (in `name_index(nodes)`),
        and its tally by `verdict_kind`; None when `filter` must answer (an invalid pod)."""
        if intent.kind == INVALID:
            return None
        table = self._table(intent, nodes)
        if table.fragments is None:
            entries = self._filter_entries.get(intent.key)
            if entries is None:
                entries = self._filter_entries[intent.key] = FilterEntries(_describe)
            table.fragments = entries.fragments(table.verdicts)
        return table.fragments.reply(positions, self.name_index(nodes).table)

    def priority_reply(self, intent: PodIntent, positions: Positions, nodes: NodeSet) -> bytes:
        """The encoded HostPriorityList of `scores` for a managed pod and the cached nodes at
        `positions` (in `name_index(nodes)`)."""
        index = self.name_index(nodes)
        table = self._table(intent, nodes)
        costs = self._cost_table(intent, nodes, table, self.short_classes(intent.workload.key))
        fragments = costs.fragments(index)
        return fragments.reply(positions, costs.class_scores(fragments.present(positions)))

    def name_index(self, nodes: NodeSet) -> NameIndex:
        """The index of `nodes`, the last one's while the names are the same (a node that changed
        keeps its name and place: its entry is replaced)."""
        if self._index is None or self._index[0] is not nodes:
            names = list(nodes.entries)
            index = self._index[1] if self._index is not None and self._index[1].names == names else NameIndex(names)
            self._index = (nodes, index)
        return self._index[1]

    # -- prioritize ------------------------------------------------------------------------------
    def short_classes(self, workload_key: str) -> frozenset[str]:
        """Classes where the plan wants more replicas than run now (needs live replica counts)."""
        wp = self.view.plan.workloads.get(workload_key)
        if wp is None or self._counts is None:
            return frozenset()
        running: dict[str, int] = {}
        for node_name, count in self._counts.by_node(workload_key).items():
            known = self._snapshot_nodes.get(node_name)
            if known is not None:
                running[known.node_class] = running.get(known.node_class, 0) + count
        return frozenset(c for c, target in wp.by_class.items() if running.get(c, 0) < target)

    def scores(self, intent: PodIntent, names, nodes: NodeSet) -> dict[str, int]:
        """0..10 per candidate for a managed pod (others: empty, i.e. neutral). Candidates that
        fail a hard check, or that the cache does not know, score 0 and do not stretch the scale."""
        if intent.kind != MANAGED:
            return {}
        table = self._table(intent, nodes)
        shorts = self.short_classes(intent.workload.key)
        costs = self._cost_table(intent, nodes, table, shorts)
        # scores_from_costs scores a node from its own weighted cost and the candidates' costs, so
        # nodes with equal cost get equal scores: one NodeCost per distinct cost gives the core's
        # exact answer at a fraction of the work for thousands of candidates (a test checks it).
        weighted = list(map(costs.weighted.get, names))
        present = set(weighted)
        present.discard(None)
        by_rep = scores_from_costs([costs.rep[c] for c in present])
        by_cost = {c: by_rep[costs.rep[c].node] for c in present}
        return dict(zip(names, map(by_cost.get, weighted, repeat(0))))

    def _cost_table(self, intent, nodes: NodeSet, table, shorts) -> "_CostTable":
        key = (intent.key, shorts)
        cached = self._cost_tables.get(key)
        if cached is not None and cached.nodes is nodes:
            return cached
        memo = self._costs.setdefault(key, {})
        entries = nodes.entries
        eligible = list(table.zones(self))
        missing = [n for n in eligible if (memo.get(n) or (None,))[0] is not entries[n]]
        if missing:
            self._fill_costs(memo, intent.workload, missing, entries, shorts)
        weighted, rep = {}, {}
        for n in eligible:
            cost = memo[n][1]
            if cost is not None:
                weighted[n] = cost.weighted_cost
                rep.setdefault(cost.weighted_cost, cost)
        result = _CostTable(nodes, weighted, rep)
        if nodes.version >= 0:
            self._cost_tables[key] = result
        return result

    def _fill_costs(self, memo, workload, missing, entries, shorts) -> None:
        """Costs of the live nodes (the cache's view merged with the snapshot's: decision_node)."""
        by_name, classes = {}, dict(self.snapshot.node_classes)
        for n in missing:
            node, cls = self.decision_node(entries[n])
            by_name[n] = node
            classes.setdefault(cls.name, cls)
        sub = replace(self.snapshot, node_classes=classes)
        wp = self.view.plan.workloads.get(workload.key)
        planned = frozenset(n for n, c in (wp.by_node.items() if wp else ()) if c > 0)
        got = {c.node: c for c in node_costs(sub, workload, missing, active_nodes=self._active,
                                               planned_nodes=planned, short_classes=shorts,
                                               by_name=by_name, weights=self._weights)}
        for n in missing:
            memo[n] = (entries[n], got.get(n))


class _VerdictTable:
    def __init__(self, nodes: NodeSet, verdicts: dict[str, tuple[int, str]]):
        self.nodes = nodes
        self.verdicts = verdicts   # in nodes.entries order
        self.fragments: FilterFragments | None = None   # made by Decider.filter_reply
        self._zones: dict[str, str] | None = None

    def zones(self, decider: "Decider") -> dict[str, str]:
        """Zone of each node that is not ruled out by a hard check (the ones prioritize scores)."""
        if self._zones is None:
            entries = self.nodes.entries
            self._zones = {n: decider.decision_node(entries[n])[0].zone
                           for n, v in self.verdicts.items() if v[0] != HARD}
        return self._zones


class _CostTable:
    def __init__(self, nodes: NodeSet, weighted: dict[str, float], rep: dict[float, NodeCost]):
        self.nodes = nodes
        self.weighted = weighted           # node -> weighted cost per frame
        self.rep = rep                     # weighted cost -> one NodeCost having it
        self._costs = list(rep)            # the cost classes: the distinct costs
        self._fragments: ScoreFragments | None = None

    def fragments(self, index: NameIndex) -> ScoreFragments:
        """The reply entries; `index`: the one of `nodes`."""
        if self._fragments is None:
            class_of = {cost: c for c, cost in enumerate(self._costs)}
            self._fragments = ScoreFragments(index, [class_of.get(self.weighted.get(n), -1) for n in self.nodes.entries],
                                             len(self._costs))
        return self._fragments

    def class_scores(self, present: list[int]) -> list[int]:
        """The score of each cost class when the candidates cover the `present` ones (0 for the
        others): the core's scores_from_costs over one node per present class, as `Decider.scores`."""
        reps = [self.rep[self._costs[c]] for c in present]
        by_node = scores_from_costs(reps)
        scores = [0] * len(self._costs)
        for c, rep in zip(present, reps):
            scores[c] = by_node[rep.node]
        return scores
