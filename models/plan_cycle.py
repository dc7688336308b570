"""One refresh of the plan loop, as both doors run it: the scaler's background refresher
(`scaler/refresher.py`, on the wall clock, reading its ports) and the simulator's `wattwise`
policy (on the simulated clock, reading the simulated cluster).

Given what a refresh read (nodes, carbon per zone, each workload with its demand, the energy
models, where pods run, each replica's delivered and dropped FPS), `PlanCycle.step`:
- feeds the pre-warming forecaster (first with the history a door read back for a workload it
  has not seen, `seed_forecast`) and writes each workload's expected demand a lead ahead
  (`models.forecast`) into its `Demand`; feeds the demand window (the planner's scale-down
  window) the higher of the demand read and the demand expected, so replicas pre-warmed for a
  ramp are held for the window like any peak, not dropped when the ramp's first sample (still
  below what was expected) ends the forecast's step: scale-down stays the window's job;
- builds one Snapshot per objective in use, with where replicas run taken from the pods;
- keeps capacity learned from drops (`models.capacity_held`) and plans with it;
- asks the re-plan gate (`models.replan.needs_replan`, for every objective's plan; any yes
  re-plans all), with "pods waiting": a workload whose pods have waited unbound (no node
  kube-scheduler may bind them to) for `pending_after_s`. Fewer pods than planned is not waiting:
  the HPA's tolerance, its rate limits and start-ups keep that true for minutes, and a new plan
  helps none of them.
The caller plans the decision's snapshots where it likes (inline, a worker process, with a
`PlanCache`) and hands the results to `commit`; a failed attempt is not committed, and the next
step re-plans ("retry"). Nothing here reads a clock or a port: all times are the caller's.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Callable, Mapping, Sequence

import numpy as np

from wattwise.models.capacity_correction import apply_corrections
from wattwise.models.capacity_held import CapacityCorrections, HeldCorrection, KeepSettings, Pair, replica_rates
from wattwise.models.cluster import Node, NodeClass
from wattwise.models.costs import zone_weights
from wattwise.models.forecast import DemandForecaster, ForecastHistory, ForecastSettings, startup_lead_s
from wattwise.models.model_set import NO_MODELS, ModelSet
from wattwise.models.plan import Plan
from wattwise.models.planner import usable_classes
from wattwise.models.ports import CarbonReading, ReplicaSample
from wattwise.models.replan import DemandWindow, PlanInputs, PlanMark, ReplanSettings, needs_replan, nodes_part
from wattwise.models.snapshot import Objective, PlannerSettings, PolicyState, Snapshot, build_snapshot
from wattwise.models.workload import Demand, Workload

PerNode = Mapping[str, int]
PodsOf = Callable[[str], "tuple[PerNode, PerNode] | None"]   # workload -> (running, ready) per node, None: unknown
UnboundOf = Callable[[str], "int | None"]                    # workload -> pods not bound to a node, None: unknown


@dataclass(frozen=True)
class CycleSettings:
    interval_s: float = 15.0
    objective: Objective = Objective()             # for workloads that ask for none
    planner: PlannerSettings = PlannerSettings()
    replan: ReplanSettings = ReplanSettings()
    pending_after_s: float = 60.0                  # pods unbound this long count as pods waiting
    capacity: KeepSettings = KeepSettings()        # capacity learned from drops: the rule, expiry and settling
    forecast: ForecastSettings = ForecastSettings()  # pre-warming: plan a start-up time ahead


@dataclass(frozen=True)
class CycleInputs:
    """What one refresh read. `nodes` in name order and `workloads` in key order (the planner
    breaks ties by input order); `objectives`: workload -> the objective it asks for (absent:
    the default); `configured`: (workload, streams) pairs a person configured rather than
    measured (nothing to forecast; a change re-plans); `pods`: running and ready pods per node
    (None: unknown, plans keep their last placements); `unbound`: pods not bound to a node yet
    (None: unknown, nobody waits); `replicas`: this
    refresh's replica samples (None: no such source, capacities as modelled; empty: the source
    failed, nothing lowered, corrections held)."""

    now_s: float
    node_classes: Mapping[str, NodeClass]
    nodes: Sequence[Node]
    carbon: Mapping[str, CarbonReading]
    workloads: Sequence[Workload]
    objectives: Mapping[str, Objective] = field(default_factory=lambda: MappingProxyType({}))
    configured: tuple = ()
    models: ModelSet = NO_MODELS
    pods: PodsOf | None = None
    unbound: UnboundOf | None = None
    replicas: Sequence[ReplicaSample] | None = None


@dataclass(frozen=True)
class CycleDecision:
    go: bool
    why: str
    objectives: tuple[Objective, ...]
    snapshots: tuple[Snapshot, ...]          # one per objective, to plan when `go`
    weights: tuple[np.ndarray, ...]          # per objective, its cost weight per zone (sorted)
    made_of: PlanInputs
    corrections: Mapping[Pair, HeldCorrection]


class PlanCycle:
    """What the plan loop remembers between refreshes (one thread at a time)."""

    def __init__(self, settings: CycleSettings = CycleSettings()):
        self._settings = settings
        self._window: DemandWindow | None = None
        self._forecaster: DemandForecaster | None = None
        self._seeds: dict[str, tuple[np.ndarray, np.ndarray]] = {}   # workload -> history to seed it with
        self._usable_seen: tuple | None = None        # (what eligibility read, usable classes)
        self._corrections = CapacityCorrections(settings.capacity)
        self._policy: dict[Objective, PolicyState] = {}
        self._marks: dict[Objective, PlanMark] = {}
        self._must_plan = True                       # no plan yet, or the last attempt failed
        self._unbound_since: dict[str, float] = {}     # workload -> since when its pods wait unbound
        self._nodes_seen: tuple = (None, None, None)  # (nodes, classes, their PlanInputs part) of the last refresh
        self.replans = 0
        self.replan_reasons: Counter = Counter()

    @property
    def settings(self) -> CycleSettings:
        return self._settings

    @settings.setter
    def settings(self, settings: CycleSettings) -> None:
        """From the next step; a demand window of another length starts afresh."""
        self._settings = settings
        self._corrections.settings = settings.capacity
        if self._window is not None and (self._window.window_s, self._window.step_s) != \
                (settings.planner.scale_down_window_s, settings.interval_s):
            self._window = None

    def step(self, x: CycleInputs, force: bool = False) -> CycleDecision:
        """Learn this refresh's demand and say whether to re-plan, with the snapshots to plan
        (with what the planner remembers only when it is to plan: a skipped refresh leaves it out)."""
        s = self.settings
        now_s = x.now_s
        workloads = list(x.workloads)
        objectives = tuple(sorted({s.objective} | {x.objectives.get(w.key, s.objective) for w in workloads},
                                  key=lambda o: (o.kind, -1.0 if o.carbon_weight is None else o.carbon_weight)))
        window = self._window_for([w.key for w in workloads])
        now_fps = np.array([w.demand_fps if w.demand.trustworthy else np.nan for w in workloads], dtype=float)
        configured = {key for key, _ in x.configured}
        measured_fps = np.array([np.nan if w.key in configured else f for w, f in zip(workloads, now_fps)])
        snapshots = [build_snapshot(now_s, x.node_classes, x.nodes, workloads, models=x.models.by_pair,
                                    carbon=x.carbon, objective=objective, settings=s.planner)
                     for objective in objectives]
        expected, lead = self._forecast(snapshots[0], measured_fps)
        workloads = [w.with_demand(replace(w.demand, expected_fps=float(e), lead_s=float(ld)))
                     if np.isfinite(e) else w for w, e, ld in zip(workloads, expected, lead)]
        snapshots = [replace(snap, workloads=tuple(workloads)) for snap in snapshots]
        corrections = self._capacity_corrections(snapshots[0], now_s, x.replicas)
        if corrections:
            corrected = corrected_models(snapshots[0], x.models.by_pair, corrections)
            snapshots = [snap.with_models(corrected) for snap in snapshots]
        weights = tuple(_weights(snap) for snap in snapshots)
        made_of = PlanInputs.of(snapshots[0], x.models.version, x.configured,   # the same for all
                                nodes=self._nodes_part(snapshots[0]))
        if force:
            go, why = True, "forced"
        else:
            go, why = self._gate(now_s, objectives, made_of, weights, np.fmax(window.peak(now_s, now_fps), expected),
                                 workloads, x)
        if go:
            self._must_plan = True
            history = window.history(now_s)     # the samples before this one (the snapshot holds this one)
            snapshots = [replace(snap, state=self._policy_state(o, snap.workloads, history, x.pods))
                         for o, snap in zip(objectives, snapshots)]
        window.add(now_s, np.fmax(self._held_through(workloads, now_fps), expected))
        return CycleDecision(go, why, objectives, tuple(snapshots), weights, made_of, MappingProxyType(corrections))

    def commit(self, decision: CycleDecision, results: Sequence[tuple[Plan, PolicyState]]) -> None:
        """The decision's plans were made: remember what each was made for."""
        self._policy = {o: state for o, (_, state) in zip(decision.objectives, results)}
        self._marks = {o: PlanMark.of(plan, snap, w, decision.made_of)
                       for o, snap, w, (plan, _) in zip(decision.objectives, decision.snapshots, decision.weights,
                                                        results)}
        self._must_plan = False
        self._unbound_since.clear()
        self.replans += 1
        self.replan_reasons[decision.why] += 1

    # -- parts of a step ---------------------------------------------------------------------------

    def _held_through(self, workloads, now_fps: np.ndarray) -> np.ndarray:
        """This step's window sample: the demand read where it is trustworthy, else the demand held
        for the workload (its last trustworthy plan's, `PolicyState.trusted`), not a gap. So once
        telemetry is back, the held level stays in the scale-down window like any sample: replicas
        come down only once demand has stayed low for the window, not on the first reading after an
        outage longer than the window (often a partial rate). No trustworthy plan yet: a gap."""
        missing = np.isnan(now_fps)
        if not missing.any() or not self._policy:
            return now_fps
        trusted = next(iter(self._policy.values())).trusted
        held = np.array([trusted[w.key][0] if w.key in trusted else np.nan for w in workloads])
        return np.where(missing, held, now_fps)

    def _nodes_part(self, snapshot: Snapshot) -> tuple:
        """`nodes_part` of the snapshot, worked out again only when its nodes are other objects or
        its classes differ (a simulator hands over the very same tuple while no node changes)."""
        nodes, classes, part = self._nodes_seen
        if nodes is not snapshot.nodes or classes != snapshot.node_classes:
            self._nodes_seen = (snapshot.nodes, snapshot.node_classes, nodes_part(snapshot))
        return self._nodes_seen[2]

    def _policy_state(self, objective: Objective, workloads, history, pods: PodsOf | None) -> PolicyState:
        """What the planner remembers, with where replicas run taken from the cluster when the pods
        are known: replicas behind one Service then plan alike whatever each planned before, and a
        restarted one starts from what runs, not from nothing. Unknown pods: the last plan's."""
        state = replace(self._policy.get(objective, PolicyState()), demand_history=history)
        if pods is None:
            return state
        placements = dict(state.placements)
        for w in workloads:
            counts = pods(w.key)
            if counts is not None:
                placements[w.key] = {node: n for node, n in sorted(counts[0].items()) if n > 0}
        return replace(state, placements=placements)

    def _capacity_corrections(self, snapshot: Snapshot, now_s: float,
                              samples: Sequence[ReplicaSample] | None) -> dict[Pair, HeldCorrection]:
        """The capacity corrections to plan with: those held, updated with this refresh's replica
        samples (none when there is no source)."""
        if samples is None:
            return {}
        replicas = replica_rates(samples, {n.name: n.node_class for n in snapshot.nodes})
        workloads = {w.key: w for w in snapshot.workloads}
        capacity = {}
        for pair in {(r.workload, r.node_class) for r in replicas} | set(self._corrections.held()):
            w, cls = workloads.get(pair[0]), snapshot.node_classes.get(pair[1])
            m = snapshot.model(w, cls) if w is not None and cls is not None else None
            if m is not None:
                capacity[pair] = m.capacity_fps
        held = self._corrections.update(now_s, capacity, replicas)
        return {pair: c for pair, c in held.items() if pair in capacity}

    def _forecast(self, snapshot: Snapshot, now_fps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pre-warming: learn this refresh's demand and say what is expected a lead ahead."""
        keys = [w.key for w in snapshot.workloads]
        usable = self._usable_classes(snapshot)
        lead = [startup_lead_s(w, (snapshot.node_classes[c] for c in usable[w.key]), self.settings.interval_s)
                for w in snapshot.workloads]
        if self._forecaster is None:
            self._forecaster = DemandForecaster(keys, lead, self.settings.forecast)
        else:
            self._forecaster = self._forecaster.rekeyed(keys, lead)
        self._seed_forecaster()
        self._forecaster.add(snapshot.now_s, now_fps)
        return self._forecaster.expected(snapshot.now_s, now_fps), self._forecaster.lead_s

    def seed_forecast(self, key: str, times_s, fps) -> None:
        """Pre-warming from history: at the next step, before it learns that step's demand, the
        forecaster learns workload `key`'s past demand (`fps` at `times_s`, NaN: unknown; before
        that step's time) as if it had stepped through it (`DemandForecaster.seed`). For a
        workload it has not learned anything of yet; one that is not in that step is not seeded."""
        self._seeds[key] = (np.asarray(times_s, dtype=float), np.asarray(fps, dtype=float))

    def forecast_history(self) -> dict[str, ForecastHistory]:
        """Per workload of the last step, how much its forecaster has learned and whether it was seeded."""
        f = self._forecaster
        return {} if f is None else f.histories()

    def _seed_forecaster(self) -> None:
        assert self._forecaster is not None
        seeds, self._seeds = self._seeds, {}
        for key in sorted(set(seeds) & set(self._forecaster.keys)):
            self._forecaster.seed(key, *seeds[key])

    def _usable_classes(self, snapshot: Snapshot) -> dict[str, frozenset[str]]:
        """`usable_classes`, worked out again only when what eligibility reads changed: the nodes'
        part the gate compares, the workloads without their demand, the models. Compared by content:
        a live refresher hands over a new, equal nodes tuple every refresh (10 ms a refresh at
        1,000 nodes when worked out each time)."""
        key = (self._nodes_part(snapshot), tuple(w.with_demand(Demand()) for w in snapshot.workloads), snapshot.models)
        if self._usable_seen is None or self._usable_seen[0] != key:
            self._usable_seen = (key, usable_classes(snapshot))
        return self._usable_seen[1]

    def _window_for(self, keys: list[str]) -> DemandWindow:
        if self._window is None:
            self._window = DemandWindow(keys, self.settings.planner.scale_down_window_s, self.settings.interval_s)
        else:
            self._window = self._window.rekeyed(keys)
        return self._window

    def _gate(self, now_s, objectives, inputs, weights, planning_fps, workloads, x: CycleInputs) -> tuple[bool, str]:
        """The core's gate (`models.replan.needs_replan`) for each objective's plan; any yes re-plans all."""
        if not self._marks:
            return True, "first plan"
        if self._must_plan:
            return True, "retry"
        if set(objectives) != set(self._marks):
            return True, "objectives-changed"
        waiting = self._pods_waiting(now_s, workloads, x)
        why = "unchanged"
        for objective, w in zip(objectives, weights):
            go, why = needs_replan(self._marks[objective], now_s, planning_fps, w, waiting, self.settings.replan,
                                   inputs)
            if go:
                return True, why
        return False, why

    def _pods_waiting(self, now_s: float, workloads, x: CycleInputs) -> bool:
        """True when a workload's pods have waited unbound for `pending_after_s` (pods the
        scheduler cannot place: the plan must change to help)."""
        if x.unbound is None:
            return False
        waiting = False
        keys = set()
        for w in workloads:
            if not x.unbound(w.key):        # none, or unknown
                continue
            keys.add(w.key)
            if now_s - self._unbound_since.setdefault(w.key, now_s) >= self.settings.pending_after_s:
                waiting = True
        for key in set(self._unbound_since) - keys:
            del self._unbound_since[key]
        return waiting


def corrected_models(snapshot: Snapshot, models, corrections: Mapping[Pair, HeldCorrection]):
    """`models` with each corrected pair's model (measured, by model type, or its prior: what the
    snapshot plans with) under the pair's own key, its capacity lowered."""
    out = dict(models)
    workloads = {w.key: w for w in snapshot.workloads}
    for key, cls in corrections:
        m = snapshot.model(workloads[key], snapshot.node_classes[cls])
        if m is not None:
            out[(key, cls)] = m
    return apply_corrections(out, {pair: c.correction for pair, c in corrections.items()})


def _weights(snapshot: Snapshot) -> np.ndarray:
    """Per zone (sorted), the core's cost weight of a watt under the snapshot's objective."""
    zones = sorted({n.zone for n in snapshot.nodes})
    k = zone_weights(snapshot, zones)
    return np.array([k[z] for z in zones], dtype=float)
