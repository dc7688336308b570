"""The background refresher: telemetry in, plans out, swapped atomically; a `PlanSource`.

Every `interval_s` (and soon after a ScaledObject is registered or changed) one thread reads its
ports (node inventory, each registered workload's demand, carbon per zone, the energy models,
pods, replica FPS) and hands what it read to the core's plan loop, `models.plan_cycle.PlanCycle`,
which the simulator's `wattwise` policy runs too: it keeps the demand window, the pre-warming
forecast and capacity learned from drops, builds one Snapshot per objective in use, and asks the
re-plan gate (`models.replan.needs_replan`) whether the answer can change. Only then does the
refresher call the pure planner, once per objective, and swap the result in. Otherwise the
previous plans stay, with the degraded reasons of this refresh. Request handlers only read the
swapped-in `ScalerState`; nothing they do waits on telemetry.

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
`models.capacity_correction`, kept as `models.capacity_held.CapacityCorrections` says: until the
pair's own model changes or the correction expires) in the models of every snapshot, and a new or changed
correction re-plans at once ("capacity-corrected"; one that expires, "capacity-correction-expired").
A failing source is a degraded reason and lowers nothing; the corrections held stay. `GET /plan`
shows them (`inputs["capacity_corrections"]`).

Pre-warming from history: with a demand port that reads history (`DemandHistoryPort`, the live
PromQL one), the first refresh that plans a workload seeds its forecaster with its demand over the
last `forecast_backfill_s`, judged as the instant reads are (`scaler/forecast_backfill.py`), so a
restarted scaler forecasts as one that ran through the day. `GET /plan` shows how much each
workload's forecaster has learned and what it was seeded with (`inputs["forecast_history"]`).
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

from wattwise.models.costs import carbon_value_too_old
from wattwise.models.forecast import ForecastSettings
from wattwise.models.grid_zone import UNMAPPED_ZONE
from wattwise.models.model_set import EnergyModelSource, StaticModels
from wattwise.models.network import Network
from wattwise.models.plan_cycle import CycleInputs, CycleSettings, PlanCycle
from wattwise.models.ports import CarbonIntensitySource, CarbonReading, NodeInventory, ReplicaFpsSource, ReplicaSample
from wattwise.models.replan import ReplanSettings
from wattwise.models.snapshot import Objective, PlannerSettings
from wattwise.models.workload import Demand, Workload
from wattwise.runtime import PlanView
from wattwise.scaler.demand import DemandHistoryPort, DemandPort, DemandReading, check_plausible
from wattwise.scaler.forecast_backfill import ForecastBackfill
from wattwise.scaler.metadata import ScalerRequest
from wattwise.scaler.planning import InlinePlanner, PlannerFailed, PlanRunner
from wattwise.scaler.pod_counts import PodCounts
from wattwise.scaler.registry import Registry
from wattwise.scaler.replica_fps import HeldCorrection, KeepSettings
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
    pending_after_s: float = 60.0                  # pods unbound this long count as pods waiting
    capacity: KeepSettings = KeepSettings()        # capacity learned from drops: the rule, expiry and settling
    forecast: ForecastSettings = ForecastSettings()  # pre-warming: plan a start-up time ahead
    forecast_backfill_s: float = 86400.0           # seed each new workload's forecast with this much history (0: off)
    forecast_backfill_budget_s: float = 10.0       # ... spending at most this long on it a refresh
    network: Network | None = None                 # round trips between zones, for ScaledObjects' originZone


class PlanRefresher:
    def __init__(self, *, inventory: NodeInventory, demand: DemandPort, carbon: CarbonIntensitySource,
                 registry: Registry, catalogue: Mapping[str, Workload] | None = None,
                 settings: RefresherSettings = RefresherSettings(), clock: Callable[[], float] = time.time,
                 planner: PlanRunner | None = None, pods: PodCounts | None = None,
                 models: EnergyModelSource | None = None, replica_fps: ReplicaFpsSource | None = None):
        """`pods`: pods per workload (where they run; unbound ones for the gate's "pods waiting").
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
        self._cycle = PlanCycle(_cycle_settings(settings))   # the loop's memory and decisions: the core's,
        self._settings = settings                              # the simulator's too
        self._clock = clock
        self.planner: PlanRunner = planner or InlinePlanner()
        self._lock = threading.Lock()
        self._state: ScalerState | None = None
        self._pods = pods
        self._last_ok_s: dict[str, float] = {}       # workload -> plan time of its last trustworthy demand (reported)
        # the background refit's last report (telemetry/refit.py `Refitter.last_report`), shown in the
        # plan view: which pairs a refit replaced or kept, and why
        self.refit_report: Callable[[], object | None] | None = None
        self.last_decision: tuple[bool, str] = (True, "first plan")
        self._nodes = None
        self._carbon_last: dict[str, CarbonReading] = {}
        self._reasons: tuple[str, ...] = ()
        self._listeners: list[Callable[[ScalerState], None]] = []
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._refresh_lock = threading.Lock()
        self._backfill = ForecastBackfill(demand, settings.forecast_backfill_s, settings.forecast_backfill_budget_s) \
            if isinstance(demand, DemandHistoryPort) else None
        registry.on_change(self._wake.set)

    @property
    def settings(self) -> RefresherSettings:
        return self._settings

    @settings.setter
    def settings(self, settings: RefresherSettings) -> None:
        """New settings apply from the next refresh, to the plan loop as to the rest."""
        self._settings = settings
        self._cycle.settings = _cycle_settings(settings)
        if self._backfill is not None:
            self._backfill.backfill_s = settings.forecast_backfill_s
            self._backfill.budget_s = settings.forecast_backfill_budget_s

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
        workloads, unreachable = self._workloads(requests, now_s, reasons)
        self._backfill_forecasts(requests, now_s, unreachable)
        staleness = {r.workload_key: now_s - self._last_ok_s[r.workload_key]
                     for r in requests if r.workload_key in self._last_ok_s}
        wanted = {r.workload_key: objective_of(r, self.settings.objective) for r in requests}
        model_set = self._models.current()
        if model_set.error:
            reasons.append(f"energy models: {_clip(model_set.error)}; planning with the ones loaded before")
        decision = self._cycle.step(CycleInputs(
            now_s, classes, nodes, carbon, workloads, objectives=wanted, configured=_configured_streams(requests),
            models=model_set, pods=self._pods.running_and_ready if self._pods is not None else None,
            unbound=self._pods.unbound if self._pods is not None else None,
            replicas=self._read_replicas(now_s, reasons)), force)
        self.last_decision = (decision.go, decision.why)
        if not decision.go:
            return self._keep(tuple(reasons), staleness)
        log.debug("re-planning at %s: %s", now_s, decision.why)
        try:
            results = self.planner.run(decision.snapshots)
        except PlannerFailed as e:
            if self._stop.is_set():
                return self._state       # shutting down: nothing to report
            self._set_reasons(tuple(reasons) + (f"{e}; answering from the previous plan",))
            return self._state
        previous = self._state
        version = (previous.version + 1) if previous else 1
        inputs = {"nodes_source": self._describe_inventory(len(nodes)), "left_out": self._left_out(),
                  "refit": self._refit_inputs(),
                  "capacity_corrections": _describe_corrections(decision.corrections),
                  "forecast_history": self._forecast_history(),
                  "settings": {"refresh_s": self.settings.interval_s,
                               "replan_min_interval_s": self.settings.replan.min_interval_s,
                               "forecast_backfill_s": self.settings.forecast_backfill_s}}
        views = {objective: PlanView(snapshot, plan, state, now_s, bool(reasons), tuple(reasons), version, inputs)
                 for objective, snapshot, (plan, state) in zip(decision.objectives, decision.snapshots, results)}
        new = ScalerState(version=version, now_s=now_s,
                          default_objective=self.settings.objective, views=MappingProxyType(views),
                          degraded_reasons=tuple(reasons), staleness_s=MappingProxyType(staleness),
                          objectives=MappingProxyType(wanted))
        self._cycle.commit(decision, results)   # only a plan that is published counts as made
        self._publish(new)
        self._log_reasons(tuple(reasons))
        log.debug("plan at %s (%s): %d workloads, %d objective(s)", now_s, decision.why, len(workloads), len(views))
        return new

    @property
    def replans(self) -> int:
        return self._cycle.replans

    @property
    def replan_reasons(self) -> Counter:
        return self._cycle.replan_reasons

    def _read_replicas(self, now_s: float, reasons: list[str]) -> list[ReplicaSample] | None:
        """This refresh's replica samples for capacity learned from drops: None without a source,
        none when it fails (reported; the corrections held stay, nothing is lowered)."""
        if self._replica_fps is None:
            return None
        try:
            return self._replica_fps.read(now_s)
        except Exception as e:  # noqa: BLE001 - a failing source corrects nothing, never stops the plan
            reasons.append(f"replica fps unavailable ({_clip(str(e))}); capacities not corrected from drops "
                           "this refresh")
            return []

    def _describe_inventory(self, count: int) -> str:
        describe = getattr(self._inventory, "describe", None)
        return describe() if callable(describe) else f"{count} nodes from {type(self._inventory).__name__}"

    def _left_out(self) -> list[dict[str, str]]:
        """ScaledObjects the workload source refused, for people (`left_out()` of the registry)."""
        left_out = getattr(self._registry, "left_out", None)
        return [{"scaled_object": k, "reason": r} for k, r in left_out()] if callable(left_out) else []

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
        news = {"refit": self._refit_inputs(),              # a refit kept every model: say so
                "forecast_history": self._forecast_history()}   # a profile bin learned, a workload seeded
        if any(v.inputs.get(k) != new for v in views.values() for k, new in news.items()):
            views = MappingProxyType({o: replace(v, inputs={**v.inputs, **news}) for o, v in views.items()})
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

    def _backfill_forecasts(self, requests: tuple[ScalerRequest, ...], now_s: float, unreachable: str) -> None:
        """Seed the forecast of workloads planned for the first time with their history (module notes)."""
        if self._backfill is None or not self.settings.forecast.enabled:
            return
        self._backfill.run(requests, now_s, self.settings.interval_s, self._judge,
                           lambda r, value: demand_fps(r, self._catalogue.get(r.workload_key), value),
                           self._cycle.seed_forecast, unreachable)

    def _forecast_history(self) -> dict[str, dict]:
        """Per workload, how much its forecaster has learned and what it was seeded with, for people."""
        done = self._backfill.done if self._backfill is not None else {}
        out = {}
        for key, h in sorted(self._cycle.forecast_history().items()):
            b = done.get(key)
            out[key] = {"profile_bins": h.profile_bins, "bins": h.bins, "profile_h": h.profile_bins * h.bin_s / 3600.0,
                        "seeded_samples": h.seeded_samples, "seeded_from_s": h.seeded_from_s,
                        "seeded_to_s": h.seeded_to_s, "backfill": None if b is None else b.as_dict()}
        return out

    def _judge(self, r: ScalerRequest, reading: DemandReading) -> DemandReading:
        """A demand reading judged plausible, or not, in the unit the request reads its query in."""
        return check_plausible(reading, self.settings.max_fps if r.demand.unit == "fps" else self.settings.max_streams)

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

    def _workloads(self, requests: tuple[ScalerRequest, ...], now_s: float,
                   reasons: list[str]) -> tuple[list[Workload], str]:
        """Each request's workload with the demand read now, and why the demand source did not
        answer ("" if it did)."""
        raw: dict[str, DemandReading] = {}                     # one read per query text,
        readings: dict[tuple[str, str], DemandReading] = {}    # judged against each reader's unit
        unreachable: DemandReading | None = None   # once the source does not answer, the rest are not asked
        workloads = []
        for r in requests:
            key = r.workload_key
            base = self._catalogue.get(key)
            if r.demand.query is None:
                reading = DemandReading(r.demand.streams, True)
            else:
                query, unit = r.demand.query, r.demand.unit
                if query not in raw:
                    if unreachable is not None:     # a hung Prometheus would cost its timeout per query
                        raw[query] = replace(unreachable, note=f"not asked this refresh: {unreachable.note}")
                    else:
                        raw[query] = self._demand.read(query, now_s)
                        if raw[query].unreachable:
                            unreachable = raw[query]
                if (query, unit) not in readings:
                    readings[(query, unit)] = self._judge(r, raw[query])
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
        return workloads, unreachable.note if unreachable is not None else ""


def _cycle_settings(s: RefresherSettings) -> CycleSettings:
    return CycleSettings(interval_s=s.interval_s, objective=s.objective, planner=s.planner, replan=s.replan,
                         pending_after_s=s.pending_after_s, capacity=s.capacity, forecast=s.forecast)


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
