"""The background refresher: telemetry in, plans out, swapped atomically; a `PlanSource`.

Every `interval_s` (and soon after a ScaledObject is registered or changed) one thread builds a
Snapshot from its ports (node inventory, each registered workload's demand, carbon per zone),
calls the pure planner once per objective in use, and swaps the result in. Request handlers only
read the swapped-in `ScalerState`; nothing they do waits on telemetry.

The planner runs where the `PlanRunner` says (`scaler/planning.py`): in service, in a worker
process, so seconds of planning never compete with the answers for the GIL. When the worker
fails (dies, hangs) the previous plan stays and is marked degraded until the next good plan.

Determinism across scaler replicas: the plan time is the wall clock rounded down to the
interval, queries are evaluated at that time, inputs are sorted, so replicas that see the same
telemetry compute the same plan.

When a port fails or a value is missing, stale or absurd, the workload's Demand is passed with
`trustworthy=False` (its last trustworthy value kept), so the planner holds the replicas it last
planned on good data. A carbon reading whose status is "stale" or "default" is planned with all
the same, and reported. Either way the state is marked degraded with the reasons, logged on every
change of reasons, and clears by itself when data returns.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Callable, Mapping

from wattwise.models.ports import CarbonIntensitySource, CarbonReading, NodeInventory
from wattwise.models.snapshot import Objective, PlannerSettings, PolicyState, build_snapshot
from wattwise.models.workload import Demand, Workload
from wattwise.runtime import PlanView
from wattwise.scaler.demand import DemandPort, DemandReading, check_plausible
from wattwise.scaler.metadata import ScalerRequest
from wattwise.scaler.planning import InlinePlanner, PlannerFailed, PlanRunner
from wattwise.scaler.registry import Registry
from wattwise.scaler.state import ScalerState
from wattwise.scaler.workloads import build_workload, demand_fps, objective_of

log = logging.getLogger(__name__)


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


class PlanRefresher:
    def __init__(self, *, inventory: NodeInventory, demand: DemandPort, carbon: CarbonIntensitySource,
                 registry: Registry, catalogue: Mapping[str, Workload] | None = None,
                 settings: RefresherSettings = RefresherSettings(), clock: Callable[[], float] = time.time,
                 planner: PlanRunner | None = None):
        self._inventory = inventory
        self._demand = demand
        self._carbon = carbon
        self._registry = registry
        self._catalogue = dict(catalogue or {})
        self.settings = settings
        self._clock = clock
        self.planner: PlanRunner = planner or InlinePlanner()
        self._lock = threading.Lock()
        self._state: ScalerState | None = None
        self._policy: dict[Objective, PolicyState] = {}
        self._last_fps: dict[str, float] = {}        # workload -> last trustworthy demand (fps, no headroom)
        self._last_ok_s: dict[str, float] = {}       # workload -> plan time of its last trustworthy demand
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
        """`PlanSource`: the plan under the default objective."""
        s = self._state
        if s is None:
            raise NotReady("no plan yet: the first refresh has not finished")
        return s.default_view

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

    def refresh_once(self) -> ScalerState | None:
        with self._refresh_lock:
            return self._refresh()

    def _refresh(self) -> ScalerState | None:
        now_s = self.plan_time()
        reasons: list[str] = []
        inventory = self._read_inventory(reasons)
        if inventory is None:
            self._set_reasons(tuple(reasons))
            return self._state
        classes, nodes = inventory
        carbon = self._read_carbon(sorted({n.zone for n in nodes}), now_s, reasons)
        requests = self._registry.active()
        workloads, never_trusted = self._workloads(requests, now_s, reasons)
        staleness = {r.workload_key: now_s - self._last_ok_s[r.workload_key]
                     for r in requests if r.workload_key in self._last_ok_s}
        objectives = sorted({self.settings.objective} | {objective_of(r, self.settings.objective) for r in requests},
                            key=lambda o: (o.kind, -1.0 if o.carbon_weight is None else o.carbon_weight))
        snapshots = [build_snapshot(now_s, classes, nodes, workloads, carbon=carbon, objective=objective,
                                    settings=self.settings.planner, state=self._policy.get(objective, PolicyState()))
                     for objective in objectives]
        try:
            results = self.planner.run(snapshots)
        except PlannerFailed as e:
            if self._stop.is_set():
                return self._state       # shutting down: nothing to report
            self._set_reasons(tuple(reasons) + (f"{e}; answering from the previous plan",))
            return self._state
        views = {}
        for objective, snapshot, (plan, state) in zip(objectives, snapshots, results):
            self._policy[objective] = state
            views[objective] = PlanView(snapshot, plan, state, now_s, bool(reasons), tuple(reasons))
        for objective in list(self._policy):
            if objective not in views:
                del self._policy[objective]
        previous = self._state
        new = ScalerState(version=(previous.version + 1) if previous else 1, now_s=now_s,
                          default_objective=self.settings.objective, views=MappingProxyType(views),
                          degraded_reasons=tuple(reasons), never_trusted=MappingProxyType(never_trusted),
                          staleness_s=MappingProxyType(staleness))
        self._publish(new)
        self._log_reasons(tuple(reasons))
        log.debug("plan at %s: %d workloads, %d objective(s)", now_s, len(workloads), len(views))
        return new

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
        return self._nodes

    def _read_carbon(self, zones, now_s, reasons: list[str]) -> dict[str, CarbonReading]:
        out = {}
        for zone in zones:
            try:
                reading = self._carbon.intensity(zone, now_s)
            except Exception as e:  # noqa: BLE001
                reading = self._carbon_last.get(zone)
                reasons.append(f"carbon intensity for {zone} unavailable ({e})" +
                               (", using the last value" if reading else ", using the planner's default"))
                if reading is None:
                    continue
            else:
                if not reading.trustworthy:
                    reasons.append(f"carbon intensity for {zone} is {reading.status}"
                                   + (f" ({reading.error})" if reading.error else ""))
                self._carbon_last[zone] = reading
            out[zone] = reading
        return out

    def _workloads(self, requests: tuple[ScalerRequest, ...], now_s: float, reasons: list[str]):
        readings: dict[str, DemandReading] = {}
        workloads = []
        never_trusted: dict[str, str] = {}
        for r in requests:
            key = r.workload_key
            base = self._catalogue.get(key)
            if r.demand.query is None:
                reading = DemandReading(r.demand.streams, True)
            else:
                if r.demand.query not in readings:
                    limit = self.settings.max_fps if r.demand.unit == "fps" else self.settings.max_streams
                    readings[r.demand.query] = check_plausible(self._demand.read(r.demand.query, now_s), limit)
                reading = readings[r.demand.query]
            if reading.ok:
                fps = demand_fps(r, base, float(reading.value))
                self._last_fps[key] = fps
                self._last_ok_s[key] = now_s
                demand = Demand(total_fps=fps)
            else:
                held = self._last_fps.get(key)
                reasons.append(f"{key}: demand untrustworthy ({reading.note}); holding the last trustworthy plan")
                if held is None:
                    never_trusted[key] = reading.note
                demand = Demand(total_fps=held or 0.0, trustworthy=False, note=reading.note)
            workloads.append(build_workload(r, base, demand))
        return workloads, never_trusted
