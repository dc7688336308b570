"""The background refresher: telemetry in, plans out, swapped atomically; a `PlanSource`.

Every `interval_s` (and soon after a ScaledObject is registered or changed) one thread builds a
Snapshot from its ports (node inventory, each registered workload's demand, carbon per zone) and
asks the core's gate, `models.replan.needs_replan` (the simulator's too), whether the answer can
change: only then does it call the pure planner, once per objective in use, and swap the result
in. Otherwise the previous plans stay, with the degraded reasons of this refresh. Request
handlers only read the swapped-in `ScalerState`; nothing they do waits on telemetry.

The gate's inputs, all in seconds of the injected clock: each workload's demand peak over the
planner's scale-down window (a `DemandWindow` of every refresh's trustworthy samples, handed to
the planner as its demand history, so a skipped plan never changes the peak a plan is sized for);
each zone's cost weight; what the plans were made of (`PlanInputs`: registrations, trust, nodes, models version, capacities, configured streams);
and whether pods wait: with a `PodCounts` port, a workload with fewer pods bound to nodes than
its plan wants for `pending_after_s`.

The planner runs where the `PlanRunner` says (`scaler/planning.py`): in service, in a worker
process, so seconds of planning never compete with the answers for the GIL. When the worker
fails (dies, hangs) the previous plan stays and is marked degraded until the next good plan.

Determinism across scaler replicas: the plan time is the wall clock rounded down to the
interval, queries are evaluated at that time, inputs are sorted, and where replicas run (what the
planner prefers to keep) is read from the pods port, not remembered, so replicas that see the
same telemetry and the same cluster compute the same plan, and a restarted one plans as the others.

When a port fails or a value is missing, stale or absurd, the workload's Demand is passed with
`trustworthy=False` and no value: the planner's `hold_untrusted` keeps the replicas it last
planned on good data (the refresher keeps no copy of that rule). A carbon reading whose status
is "stale" or "default", or a zone without one, is planned with the core's conservative default
(`models.costs.zone_intensity`) and reported. Either way the state is marked degraded with the
reasons, logged on every change of reasons, and clears by itself when data returns.

Capacity learned from drops: with a `ReplicaFpsSource`, each refresh reads every replica's
delivered and dropped FPS at the plan time; a (workload, node class) pair whose replicas drop
frames below the capacity it is planned with gets that capacity lowered (the core's
`models.capacity_correction`, kept as `scaler.replica_fps.CapacityCorrections` says: until the
models change or the correction expires) in the models of every snapshot, and a new or changed
correction re-plans at once ("capacity-corrected"; one that expires, "capacity-correction-expired").
A failing source is a degraded reason and lowers nothing; the corrections held stay. `GET /plan`
shows them (`inputs["capacity_corrections"]`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Callable, Mapping

import numpy as np

from wattwise.models.capacity_correction import apply_corrections
from wattwise.models.costs import carbon_value_too_old, zone_weights
from wattwise.models.forecast import DemandForecaster, ForecastSettings, startup_lead_s
from wattwise.models.grid_zone import UNMAPPED_ZONE
from wattwise.models.model_set import EnergyModelSource, StaticModels
from wattwise.models.network import Network
from wattwise.models.ports import CarbonIntensitySource, CarbonReading, NodeInventory, ReplicaFpsSource
from wattwise.models.replan import DemandWindow, PlanInputs, PlanMark, ReplanSettings, needs_replan
from wattwise.models.snapshot import Objective, PlannerSettings, PolicyState, Snapshot, build_snapshot
from wattwise.models.workload import Demand, Workload
from wattwise.runtime import PlanView
from wattwise.scaler.demand import DemandPort, DemandReading, check_plausible
from wattwise.scaler.metadata import ScalerRequest
from wattwise.scaler.planning import InlinePlanner, PlannerFailed, PlanRunner
from wattwise.scaler.pod_counts import PodCounts
from wattwise.scaler.registry import Registry
from wattwise.scaler.replica_fps import CapacityCorrections, HeldCorrection, KeepSettings, replica_rates
from wattwise.scaler.state import ScalerState
from wattwise.scaler.workloads import build_workload, demand_fps, objective_of

log = logging.getLogger(__name__)

NOTE_CHARS = 300   # the most of a port's error kept in reasons (they reach logs and status messages)


class NotReady(RuntimeError):
    """No plan has been made yet (first refresh pending, or the node inventory never answered)."""


@dataclass(frozen=True)
class RefresherSettings:
    interval_s: float = 15.0
    objective: Objective = Objective()
    planner: PlannerSettings = PlannerSettings()   # its headroom applies where a workload gives none
    max_streams: float = 100_000.0                 # a query value above this is absurd
    max_fps: float = 1_000_000.0
    wake_debounce_s: float = 0.05
    replan: ReplanSettings = ReplanSettings()      # when to re-plan: the core's gate, as in the simulator
    pending_after_s: float = 60.0                  # planned pods missing this long count as pods waiting
    capacity: KeepSettings = KeepSettings()        # capacity learned from drops: the rule, expiry and settling
    forecast: ForecastSettings = ForecastSettings()  # pre-warming: plan a start-up time ahead
    network: Network | None = None                 # round trips between zones, for ScaledObjects' originZone


class PlanRefresher:
    def __init__(self, *, inventory: NodeInventory, demand: DemandPort, carbon: CarbonIntensitySource,
                 registry: Registry, catalogue: Mapping[str, Workload] | None = None,
                 settings: RefresherSettings = RefresherSettings(), clock: Callable[[], float] = time.time,
                 planner: PlanRunner | None = None, pods: PodCounts | None = None,
                 models: EnergyModelSource | None = None, replica_fps: ReplicaFpsSource | None = None):
        """`pods`: pods bound per workload, for the gate's "pods waiting" (None: never waiting).
        `models`: the energy models every plan uses (None: none, every pair from its prior); a
        new version of them re-plans at once. `replica_fps`: each replica's delivered and dropped
        FPS, to lower the capacity of pairs that drop frames (None: capacities as modelled)."""
        self._inventory = inventory
        self._demand = demand
        self._carbon = carbon
        self._registry = registry
        self._catalogue = dict(catalogue or {})
        self._models: EnergyModelSource = models or StaticModels({})
        self._replica_fps = replica_fps
        self._corrections = CapacityCorrections(settings.capacity)
        self.settings = settings
        self._clock = clock
        self.planner: PlanRunner = planner or InlinePlanner()
        self._lock = threading.Lock()
        self._state: ScalerState | None = None
        self._pods = pods
        self._policy: dict[Objective, PolicyState] = {}
        self._last_ok_s: dict[str, float] = {}       # workload -> plan time of its last trustworthy demand (reported)
        self._window: DemandWindow | None = None     # trustworthy demand samples over the scale-down window
        self._forecaster: DemandForecaster | None = None   # pre-warming (models/forecast.py)
        # the background refit's last report (telemetry/refit.py `Refitter.last_report`), shown in the
        # plan view: which pairs a refit replaced or kept, and why
        self.refit_report: Callable[[], object | None] | None = None
        self._marks: dict[Objective, PlanMark] = {}  # what each objective's plan was made for
        self._must_plan = True                       # no plan yet, or the last attempt failed
        self._short_since: dict[str, float] = {}     # workload -> since when it has fewer pods than planned
        self.replans = 0
        self.replan_reasons: Counter = Counter()
        self.last_decision: tuple[bool, str] = (True, "first plan")
        self._nodes = None
        self._carbon_last: dict[str, CarbonReading] = {}
        self._reasons: tuple[str, ...] = ()
        self._listeners: list[Callable[[ScalerState], None]] = []
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._refresh_lock = threading.Lock()
        registry.on_change(self._wake.set)

    # -- reading ---------------------------------------------------------------------------------

    def state(self) -> ScalerState | None:
        return self._state

    def current(self) -> PlanView:
        """`PlanSource`: the plan under the default objective, through which each workload finds
        the plan of its own objective (`ScalerState.served_view`)."""
        s = self._state
        if s is None:
            raise NotReady("no plan yet: the first refresh has not finished")
        return s.served_view

    @property
    def carbon(self) -> CarbonIntensitySource:
        return self._carbon

    def add_listener(self, fn: Callable[[ScalerState], None]) -> None:
        """Called (on the refresher thread) after every swap."""
        self._listeners.append(fn)

    # -- running ---------------------------------------------------------------------------------

    def start(self) -> None:
        self.planner.start()
        self._thread = threading.Thread(target=self._loop, name="wattwise-plan-refresher", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        self.planner.stop()              # a plan in progress is abandoned, so the thread ends promptly
        if self._thread is not None:
            self._thread.join(timeout_s)

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.refresh_once()
            except Exception:  # noqa: BLE001 - the loop must survive; the failure is reported, not hidden
                log.exception("plan refresh failed; answers continue from the previous plan")
                self._set_reasons(("plan refresh failed (see the log); answering from the previous plan",))
            interval = self.settings.interval_s
            wait_s = interval - (self._clock() % interval) if interval > 0 else 1.0
            if self._wake.wait(max(wait_s, 0.0)) and not self._stop.is_set():
                time.sleep(self.settings.wake_debounce_s)   # let a burst of registrations land together

    def _set_reasons(self, reasons: tuple[str, ...]) -> None:
        """Mark the current state and its views degraded without a new plan (the refresh failed)."""
        self._log_reasons(reasons)
        s = self._state
        if s is not None and s.degraded_reasons != reasons:
            views = {o: replace(v, degraded=True, degraded_reasons=reasons) for o, v in s.views.items()}
            self._publish(replace(s, version=s.version + 1, views=MappingProxyType(views), degraded_reasons=reasons))

    def _publish(self, state: ScalerState) -> None:
        with self._lock:
            self._state = state
        for fn in self._listeners:
            try:
                fn(state)
            except Exception:  # noqa: BLE001
                log.exception("refresh listener failed")

    # -- one refresh -----------------------------------------------------------------------------

    def plan_time(self) -> float:
        interval = self.settings.interval_s
        now = self._clock()
        return math.floor(now / interval) * interval if interval > 0 else now

    def refresh_once(self, force: bool = False) -> ScalerState | None:
        """Read the ports and re-plan if the gate says so (`force`: re-plan whatever it says)."""
        with self._refresh_lock:
            return self._refresh(force)

    def _refresh(self, force: bool = False) -> ScalerState | None:
        now_s = self.plan_time()
        reasons: list[str] = []
        inventory = self._read_inventory(reasons)
        if inventory is None:
            self._set_reasons(tuple(reasons))
            return self._state
        classes, nodes = inventory
        carbon = self._read_carbon(sorted({n.zone for n in nodes}), now_s, reasons)
        requests = self._registry.active()
        workloads = self._workloads(requests, now_s, reasons)
        staleness = {r.workload_key: now_s - self._last_ok_s[r.workload_key]
                     for r in requests if r.workload_key in self._last_ok_s}
        wanted = {r.workload_key: objective_of(r, self.settings.objective) for r in requests}
        objectives = sorted({self.settings.objective} | set(wanted.values()),
                            key=lambda o: (o.kind, -1.0 if o.carbon_weight is None else o.carbon_weight))
        window = self._window_for([w.key for w in workloads])
        now_fps = np.array([w.demand_fps if w.demand.trustworthy else np.nan for w in workloads], dtype=float)
        history = window.history(now_s)
        configured = {key for key, _ in _configured_streams(requests)}   # a person's number: nothing to forecast
        measured_fps = np.array([np.nan if w.key in configured else f for w, f in zip(workloads, now_fps)])
        expected = self._forecast(now_s, workloads, classes, measured_fps)
        workloads = [replace(w, demand=replace(w.demand, expected_fps=float(e), lead_s=float(lead)))
                     if np.isfinite(e) else w for w, e, lead in zip(workloads, expected, self._forecaster.lead_s)]
        model_set = self._models.current()
        if model_set.error:
            reasons.append(f"energy models: {_clip(model_set.error)}; planning with the ones loaded before")
        snapshots = [build_snapshot(now_s, classes, nodes, workloads, models=model_set.by_pair, carbon=carbon,
                                    objective=objective,
                                    settings=self.settings.planner,
                                    state=self._policy_state(objective, workloads, history))
                     for objective in objectives]
        corrections = self._capacity_corrections(snapshots[0], model_set.version, now_s, reasons)
        if corrections:
            corrected_models = _corrected_models(snapshots[0], model_set.by_pair, corrections)
            snapshots = [s.with_models(corrected_models) for s in snapshots]
        weights = [_weights(s) for s in snapshots]
        made_of = PlanInputs.of(snapshots[0], model_set.version, _configured_streams(requests))  # same for all
        go, why = (True, "forced") if force else self._gate(now_s, objectives, made_of, weights,
                                                             np.fmax(window.peak(now_s, now_fps), expected),
                                                             requests)
        window.add(now_s, now_fps)
        self.last_decision = (go, why)
        if not go:
            return self._keep(tuple(reasons), staleness)
        log.debug("re-planning at %s: %s", now_s, why)
        self._must_plan = True
        try:
            results = self.planner.run(snapshots)
        except PlannerFailed as e:
            if self._stop.is_set():
                return self._state       # shutting down: nothing to report
            self._set_reasons(tuple(reasons) + (f"{e}; answering from the previous plan",))
            return self._state
        views = {}
        previous = self._state
        version = (previous.version + 1) if previous else 1
        inputs = {"nodes_source": self._describe_inventory(len(nodes)), "left_out": self._left_out(),
                  "refit": self._refit_inputs(),
                  "capacity_corrections": _describe_corrections(corrections),
                  "settings": {"refresh_s": self.settings.interval_s,
                               "replan_min_interval_s": self.settings.replan.min_interval_s}}
        for objective, snapshot, (plan, state) in zip(objectives, snapshots, results):
            self._policy[objective] = state
            views[objective] = PlanView(snapshot, plan, state, now_s, bool(reasons), tuple(reasons), version, inputs)
        for objective in list(self._policy):
            if objective not in views:
                del self._policy[objective]
        self._marks = {o: PlanMark.of(v.plan, v.snapshot, w, made_of) for (o, v), w in zip(views.items(), weights)}
        self._must_plan = False
        self._short_since.clear()
        self.replans += 1
        self.replan_reasons[why] += 1
        new = ScalerState(version=version, now_s=now_s,
                          default_objective=self.settings.objective, views=MappingProxyType(views),
                          degraded_reasons=tuple(reasons), staleness_s=MappingProxyType(staleness),
                          objectives=MappingProxyType(wanted))
        self._publish(new)
        self._log_reasons(tuple(reasons))
        log.debug("plan at %s (%s): %d workloads, %d objective(s)", now_s, why, len(workloads), len(views))
        return new

    def _policy_state(self, objective: Objective, workloads, history) -> PolicyState:
        """What the planner remembers, with where replicas run taken from the cluster when the pods
        are known: replicas behind one Service then plan alike whatever each planned before, and a
        restarted one starts from what runs, not from nothing. Unknown pods: the last plan's."""
        state = replace(self._policy.get(objective, PolicyState()), demand_history=history)
        if self._pods is None:
            return state
        placements = dict(state.placements)
        for w in workloads:
            counts = self._pods.running_and_ready(w.key)
            if counts is not None:
                placements[w.key] = {node: n for node, n in sorted(counts[0].items()) if n > 0}
        return replace(state, placements=placements)

    def _capacity_corrections(self, snapshot: Snapshot, models_version: int, now_s: float,
                              reasons: list[str]) -> dict[tuple[str, str], HeldCorrection]:
        """The capacity corrections to plan with: those held, updated with this refresh's replica
        samples (none when the source failed: reported, nothing lowered)."""
        if self._replica_fps is None:
            return {}
        try:
            samples = self._replica_fps.read(now_s)
        except Exception as e:  # noqa: BLE001 - a failing source corrects nothing, never stops the plan
            reasons.append(f"replica fps unavailable ({_clip(str(e))}); capacities not corrected from drops "
                           "this refresh")
            samples = []
        replicas = replica_rates(samples, {n.name: n.node_class for n in snapshot.nodes})
        workloads = {w.key: w for w in snapshot.workloads}
        capacity = {}
        for pair in {(r.workload, r.node_class) for r in replicas} | set(self._corrections.held()):
            w, cls = workloads.get(pair[0]), snapshot.node_classes.get(pair[1])
            m = snapshot.model(w, cls) if w is not None and cls is not None else None
            if m is not None:
                capacity[pair] = m.capacity_fps
        held = self._corrections.update(now_s, models_version, capacity, replicas)
        return {pair: c for pair, c in held.items() if pair in capacity}

    def _describe_inventory(self, count: int) -> str:
        describe = getattr(self._inventory, "describe", None)
        return describe() if callable(describe) else f"{count} nodes from {type(self._inventory).__name__}"

    def _left_out(self) -> list[dict[str, str]]:
        """ScaledObjects the workload source refused, for people (`left_out()` of the registry)."""
        left_out = getattr(self._registry, "left_out", None)
        return [{"scaled_object": k, "reason": r} for k, r in left_out()] if callable(left_out) else []

    def _forecast(self, now_s: float, workloads, classes, now_fps: np.ndarray) -> np.ndarray:
        """Pre-warming: learn this refresh's demand and say what is expected a start-up ahead."""
        keys = [w.key for w in workloads]
        lead = [startup_lead_s(w, list(classes.values())) for w in workloads]
        if self._forecaster is None:
            self._forecaster = DemandForecaster(keys, lead, self.settings.forecast)
        else:
            self._forecaster = self._forecaster.rekeyed(keys, lead)
        self._forecaster.add(now_s, now_fps)
        return self._forecaster.expected(now_s, now_fps)

    def _window_for(self, keys: list[str]) -> DemandWindow:
        if self._window is None:
            self._window = DemandWindow(keys, self.settings.planner.scale_down_window_s, self.settings.interval_s)
        else:
            self._window = self._window.rekeyed(keys)
        return self._window

    def _gate(self, now_s, objectives, inputs, weights, planning_fps, requests) -> tuple[bool, str]:
        """The core's gate (`models.replan.needs_replan`) for each objective's plan; any yes re-plans all."""
        if not self._marks:
            return True, "first plan"
        if self._must_plan:
            return True, "retry"
        if set(objectives) != set(self._marks):
            return True, "objectives-changed"
        waiting = self._pods_waiting(now_s, requests)
        why = "unchanged"
        for objective, w in zip(objectives, weights):
            go, why = needs_replan(self._marks[objective], now_s, planning_fps, w, waiting, self.settings.replan,
                                   inputs)
            if go:
                return True, why
        return False, why

    def _pods_waiting(self, now_s: float, requests: tuple[ScalerRequest, ...]) -> bool:
        """True when a workload has had fewer pods bound to nodes than its plan wants for
        `pending_after_s` (pods the scheduler cannot place: the plan must change to help)."""
        state = self._state
        if self._pods is None or state is None:
            return False
        waiting = False
        keys = set()
        for r in requests:
            key = r.workload_key
            wp = state.view_for(objective_of(r, self.settings.objective)).plan.workloads.get(key)
            counts = self._pods.running_and_ready(key)
            if wp is None or counts is None or sum(counts[0].values()) >= wp.replicas:
                continue
            keys.add(key)
            if now_s - self._short_since.setdefault(key, now_s) >= self.settings.pending_after_s:
                waiting = True
        for key in set(self._short_since) - keys:
            del self._short_since[key]
        return waiting

    def _keep(self, reasons: tuple[str, ...], staleness: dict[str, float]) -> ScalerState | None:
        """No new plan: keep the plans, with this refresh's degraded reasons and staleness
        (published all the same: listeners see every refresh)."""
        s = self._state
        if s is None:
            return None
        views = s.views
        if s.degraded_reasons != reasons:
            views = MappingProxyType({o: replace(v, degraded=bool(reasons), degraded_reasons=reasons)
                                      for o, v in views.items()})
        refit = self._refit_inputs()
        if any(v.inputs.get("refit") != refit for v in views.values()):   # a refit kept every model: say so
            views = MappingProxyType({o: replace(v, inputs={**v.inputs, "refit": refit}) for o, v in views.items()})
        s = replace(s, version=s.version + 1, views=views, degraded_reasons=reasons,
                    staleness_s=MappingProxyType(staleness))
        self._publish(s)
        self._log_reasons(reasons)
        return s

    def _refit_inputs(self) -> dict | None:
        """The last background refit, as the plan view shows it (None: no refits in this process)."""
        if self.refit_report is None:
            return None
        report = self.refit_report()
        return None if report is None else report.as_dict()

    def _log_reasons(self, reasons: tuple[str, ...]) -> None:
        if reasons != self._reasons:
            if reasons:
                log.warning("degraded: %s", "; ".join(reasons))
            else:
                log.info("recovered: telemetry is trustworthy again")
            self._reasons = reasons

    def _read_inventory(self, reasons: list[str]):
        try:
            classes = self._inventory.node_classes()
            nodes = sorted(self._inventory.nodes(), key=lambda n: n.name)
            self._nodes = (classes, nodes)
        except Exception as e:  # noqa: BLE001 - any port failure degrades, never crashes the loop
            if self._nodes is None:
                reasons.append(f"node inventory unavailable and never read: {e}")
                return None
            reasons.append(f"node inventory unavailable, using the last one read: {e}")
        else:
            stale = getattr(self._inventory, "stale_reason", None)     # read, but maybe out of date
            note = stale() if callable(stale) else ""
            if note:
                reasons.append(_clip(note))
        return self._nodes

    def _read_carbon(self, zones, now_s, reasons: list[str]) -> dict[str, CarbonReading]:
        out = {}
        for zone in zones:
            if zone == UNMAPPED_ZONE:      # nodes in no known grid: the default, reported by the inventory
                continue
            try:
                reading = self._carbon.intensity(zone, now_s)
            except Exception as e:  # noqa: BLE001
                error = _clip(str(e))
                last = self._carbon_last.get(zone)
                default = self.settings.planner.carbon_default_g_per_kwh
                reasons.append(f"carbon intensity for {zone} unavailable ({error})" +
                               (f", using the last value, counted at no less than {default:g} g/kWh" if last else
                                f", counting the default {default:g} g/kWh"))
                if last is None:
                    continue                                   # no reading: the core counts the default
                reading = replace(last, status="stale", error=error)   # untrusted: never cheaper than the default
            else:
                if reading is None:                            # no provider configured for it
                    continue                                   # the core counts the default
                max_age_s = self.settings.planner.carbon_max_age_s
                if reading.trustworthy and carbon_value_too_old(reading, now_s, max_age_s):
                    age_h = (now_s - reading.at_s) / 3600.0
                    reading = replace(reading, status="stale", error=f"its value is {age_h:.1f} h old (more than "
                                      f"{max_age_s / 3600.0:g} h)")  # the core counts it as it would anyway
                if not reading.trustworthy:
                    reasons.append(f"carbon intensity for {zone} is {reading.status}"
                                   + (f" ({_clip(reading.error)})" if reading.error else ""))
                self._carbon_last[zone] = reading
            out[zone] = reading
        return out

    def _workloads(self, requests: tuple[ScalerRequest, ...], now_s: float, reasons: list[str]) -> list[Workload]:
        raw: dict[str, DemandReading] = {}                     # one read per query text,
        readings: dict[tuple[str, str], DemandReading] = {}    # judged against each reader's unit
        workloads = []
        for r in requests:
            key = r.workload_key
            base = self._catalogue.get(key)
            if r.demand.query is None:
                reading = DemandReading(r.demand.streams, True)
            else:
                query, unit = r.demand.query, r.demand.unit
                if query not in raw:
                    raw[query] = self._demand.read(query, now_s)
                if (query, unit) not in readings:
                    limit = self.settings.max_fps if unit == "fps" else self.settings.max_streams
                    readings[(query, unit)] = check_plausible(raw[query], limit)
                reading = readings[(query, unit)]
            if reading.ok:
                self._last_ok_s[key] = now_s
                demand = Demand(total_fps=demand_fps(r, base, float(reading.value)))
            else:
                note = _clip(reading.note)
                reasons.append(f"{key}: demand untrustworthy ({note}); holding the last trustworthy plan")
                demand = Demand(trustworthy=False, note=note)   # the planner's hold_untrusted decides
            workloads.append(build_workload(r, base, demand, self.settings.network))
        live = {r.workload_key for r in requests}
        for key in set(self._last_ok_s) - live:
            del self._last_ok_s[key]
        return workloads


def _corrected_models(snapshot: Snapshot, models, corrections: Mapping[tuple[str, str], HeldCorrection]):
    """`models` with each corrected pair's model (measured, by model type, or its prior: what the
    snapshot plans with) under the pair's own key, its capacity lowered."""
    out = dict(models)
    workloads = {w.key: w for w in snapshot.workloads}
    for key, cls in corrections:
        m = snapshot.model(workloads[key], snapshot.node_classes[cls])
        if m is not None:
            out[(key, cls)] = m
    return apply_corrections(out, {pair: c.correction for pair, c in corrections.items()})


def _describe_corrections(corrections: Mapping[tuple[str, str], HeldCorrection]) -> list[dict]:
    """For people (GET /plan): per corrected pair, the capacity planned with and the model's."""
    return [{"workload": key, "node_class": cls, "capacity_fps": c.capacity_fps,
             "corrected_from_fps": c.model_capacity_fps, "since_s": c.since_s, "reason": str(c.correction.reason)}
            for (key, cls), c in sorted(corrections.items())]


def _configured_streams(requests) -> tuple:
    """The stream counts given in metadata (not measured): a change is a decision, planned at once."""
    return tuple((r.workload_key, r.demand.streams) for r in requests if r.demand.query is None)


def _clip(text: str) -> str:
    return text if len(text) <= NOTE_CHARS else text[:NOTE_CHARS] + "..."


def _weights(snapshot: Snapshot) -> np.ndarray:
    """Per zone (sorted), the core's cost weight of a watt under the snapshot's objective."""
    zones = sorted({n.zone for n in snapshot.nodes})
    k = zone_weights(snapshot, zones)
    return np.array([k[z] for z in zones], dtype=float)
