"""`wattwise`: the core planner and placement scoring, called as the scaler and extender call them.

- Scaler (KEDA external scaler): the refresher's plan loop itself, `models.plan_cycle.PlanCycle`,
  refreshed every step with what its ports would read (nodes with their power state, demand as
  the application reports it, i.e. served plus dropped FPS; carbon per zone now; the scenario's
  energy models; running, ready and unbound pods), so the demand window, pre-warming, the re-plan
  gate and the snapshots are the shipped ones; the planner runs with a `PlanCache`. KEDA reads
  the workload's `asked_replicas` as the metric with target 1 on every HPA sync, so the HPA's
  tolerance, stabilisation and rate limits still apply; IsActive is `replicas > 0`.
- Extender (prioritize): `models.scoring.node_costs` for the candidates (nodes that pass the
  filters), with the plan's active nodes, the workload's planned nodes, the classes the plan is
  short of (`models.scoring.short_classes`) and the nodes' power state now, then
  `models.scoring.candidate_scores`, as `models.placement` serves them to the extender;
  kube-scheduler adds score x weight x 10 to its own default plugin scores.
- Scale-down: the ReplicaSet controller's own order (`models.delete_order.pods_to_delete`) over
  the pods with the `controller.kubernetes.io/pod-deletion-cost` the extender's reconciler keeps
  on them (`planned_deletion_costs`, as if applied at once): starting pods first, then pods where
  the plan wants fewer.
- Node power: WattWise ships no node actuator, so nodes come and go as the cluster's node
  autoscaler decides: cluster-autoscaler with `keda-tuned-ca`'s flags. Replicas the plan wants
  where no awake node has room wait Pending, which is what it adds a node for; nodes the
  extender's scoring empties are removed once unneeded for its 10 minutes.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import replace

import numpy as np

from wattwise.models.costs import zone_weights
from wattwise.models.delete_order import planned_deletion_costs, pods_to_delete
from wattwise.models.forecast import ForecastSettings
from wattwise.models.model_set import ModelSet
from wattwise.models.plan_cycle import CycleInputs, CycleSettings, PlanCycle
from wattwise.models.planner import PlanCache, plan as make_plan
from wattwise.models.rollout import desired_replicas
from wattwise.models.scoring import candidate_scores, node_costs, short_classes
from wattwise.models.workload import Demand
from wattwise.simulations.cluster_model import ON, WAKING
from wattwise.simulations.context import SimContext
from wattwise.simulations.policies.base import ClusterAutoscaled, Policy, default_plugin_scores, pick_max
from wattwise.simulations.snapshot_view import carbon_readings

log = logging.getLogger(__name__)

SHIPPED_HPA_SCALE_DOWN_WINDOW_S = 0.0   # behavior.scaleDown.stabilizationWindowSeconds in deploy/examples


class WattwisePolicy(ClusterAutoscaled, Policy):
    name = "wattwise"
    forecast = True      # pre-warming: plan for the demand expected by the next refresh plus start-up
    # deploy/examples' ScaledObjects turn the HPA's scale-down stabilisation off: the planner
    # already holds each workload's peak over its scale-down window, and the two would add up
    hpa_scale_down_window_s = SHIPPED_HPA_SCALE_DOWN_WINDOW_S

    def start(self, ctx: SimContext) -> None:
        cm = ctx.cm
        t = self.timing
        self.plan = None
        self.state = None
        self.snapshot = None
        self.plan_version = 0
        # the scaler's plan loop, as `wattwise serve` runs it (`scaler/refresher.py` hands the
        # same core object what its ports read): a refresh every step, serve's defaults otherwise
        self.cycle = PlanCycle(CycleSettings(interval_s=ctx.inputs.step_s, objective=cm.snapshot.objective,
                                             planner=cm.snapshot.settings, replan=t.replan,
                                             forecast=ForecastSettings(enabled=self.forecast)))
        self.last_decision = None
        self._plan_caches: dict = {}          # per objective: node groups and pair verdicts while the cluster stands still
        self._workload_order = sorted(range(cm.n_workloads), key=lambda w: cm.snapshot.workloads[w].key)
        self._models = ModelSet(by_pair=cm.snapshot.models)
        self._pods_key = None
        self._pods_by_key: dict = {}
        self._name_index = {n: i for i, n in enumerate(cm.node_names)}
        self._cost_cache: dict = {}
        self._metric_cache: tuple | None = None
        self._by_name = {n.name: n for n in cm.snapshot.nodes}
        # what `node_costs` reads of a node besides the plan and its power state: class, zone and
        # what other pods reserve on it; nodes alike in these and in the plan cost the same
        reserved = {r: i for i, r in enumerate(dict.fromkeys(n.reserved for n in cm.snapshot.nodes))}
        kind = np.array([reserved[n.reserved] for n in cm.snapshot.nodes], np.int64)
        self._node_kind = (kind * len(cm.class_names) + cm.class_idx) * len(cm.zones) + cm.zone_idx
        self.start_autoscaler(ctx)     # the cluster's, as keda-tuned-ca's: WattWise ships no node actuator
        self.on_tick(ctx)

    @property
    def replans(self) -> int:
        return self.cycle.replans

    @property
    def replan_reasons(self) -> Counter:
        return self.cycle.replan_reasons

    # --- the scaler's background refresher -----------------------------------------------------
    def _pods(self, ctx: SimContext, key: str):
        """The pods port: running (started or starting) and ready pods per node of a workload."""
        st = ctx.st
        if self._pods_key != st.version:
            cm, names = ctx.cm, ctx.cm.node_names
            running, ready = _rows_by_node(st.ready + st.booting, cm.n_workloads), _rows_by_node(st.ready, cm.n_workloads)
            self._pods_by_key = {wl.key: ({names[n]: c for n, c in running[w].items()},
                                          {names[n]: c for n, c in ready[w].items()})
                                 for w, wl in enumerate(cm.snapshot.workloads)}
            self._pods_key = st.version
        return self._pods_by_key.get(key, ({}, {}))

    def _read(self, ctx: SimContext) -> CycleInputs:
        """What the refresher's ports read now: the nodes with their power state, carbon per zone
        (the replayed trace's), each workload's demand as the application reports it (served plus
        dropped FPS), the scenario's energy models, and the pods (pending ones are unbound)."""
        cm, st = ctx.cm, ctx.st
        powered = (st.node_state == ON) | (st.node_state == WAKING)
        demand = ctx.demand_fps
        workloads = [cm.snapshot.workloads[w].with_demand(Demand(total_fps=float(demand[w])))
                     for w in self._workload_order]
        unbound = {wl.key: int(st.pending[w]) for w, wl in enumerate(cm.snapshot.workloads)}
        return CycleInputs(ctx.now_s, cm.snapshot.node_classes, cm.powered_nodes.nodes(powered),
                           carbon_readings(ctx, ctx.carbon_g_per_kwh), workloads, models=self._models,
                           pods=lambda key: self._pods(ctx, key), unbound=unbound.get)

    def on_tick(self, ctx: SimContext) -> None:
        self.refresh(ctx)

    def refresh(self, ctx: SimContext, force: bool = False) -> None:
        """One refresh of the plan loop (`force`: re-plan whatever the gate says)."""
        decision = self.cycle.step(self._read(ctx), force)
        self.last_decision = (decision.go, decision.why)
        if not decision.go:
            return
        results = tuple(make_plan(snap, self._plan_caches.setdefault(o, PlanCache()))
                        for o, snap in zip(decision.objectives, decision.snapshots))
        self.cycle.commit(decision, results)
        served = decision.objectives.index(ctx.cm.snapshot.objective)
        self._adopt(ctx, decision.snapshots[served], *results[served])

    def _adopt(self, ctx: SimContext, snapshot, plan, state) -> None:
        """A new plan: what the answers, the extender and node power read from it."""
        cm = ctx.cm
        self.snapshot, self.plan, self.state = snapshot, plan, state
        self.plan_version += 1
        self._cost_cache.clear()
        self._by_name = {n.name: n for n in self.snapshot.nodes}
        self._weights_by_zone = zone_weights(self.snapshot, {n.zone for n in self.snapshot.nodes})
        self.active = np.zeros(cm.n_nodes, bool)
        self.active[[self._name_index[n] for n in self.plan.active_nodes]] = True
        self._active_names = frozenset(self.plan.active_nodes)
        self.planned = np.zeros((cm.n_workloads, cm.n_nodes), np.int64)
        for w, wl in enumerate(cm.snapshot.workloads):
            for node, count in self.plan.workloads[wl.key].by_node.items():
                self.planned[w, self._name_index[node]] = count
        self.plan_replicas = np.array([self.plan.workloads[wl.key].asked_replicas for wl in cm.snapshot.workloads],
                                      dtype=float)   # with those waiting for room (`models/unplaced.py`)
        self._planned_by_node = [_by_node(self.planned[w]) for w in range(cm.n_workloads)]

    # --- KEDA ---------------------------------------------------------------------------------
    def metric(self, ctx: SimContext):
        """What the scaler reports: `models.rollout.desired_replicas` from the plan and the pods
        running and ready per node (make before break: Kubernetes never moves a pod)."""
        st = ctx.st
        # a workload's answer changes only with its own part of the plan (replicas asked, per
        # node) and its own pods (starting, ready): only the workloads where one of them moved
        # since the last answer are asked again
        now = (st.ready.copy(), st.booting.copy(), self.planned.copy(), self.plan_replicas.copy())
        if self._metric_cache is None:
            total = np.zeros(ctx.cm.n_workloads)
            todo = range(ctx.cm.n_workloads)
        else:
            total, before = self._metric_cache
            moved = (now[3] != before[3])
            for a, b in zip(now[:3], before[:3]):
                moved |= (a != b).any(axis=1)
            todo = np.flatnonzero(moved).tolist()
        for w in todo:
            running, ready = _by_node(st.ready[w] + st.booting[w]), _by_node(st.ready[w])
            total[w] = desired_replicas(int(self.plan_replicas[w]), self._planned_by_node[w], running, ready)
        self._metric_cache = (total, now)
        total = total.copy()
        return total, np.ones(ctx.cm.n_workloads), total > 0

    # --- the extender ---------------------------------------------------------------------------
    def _short_classes(self, ctx: SimContext, w: int) -> frozenset[str]:
        """Classes where the plan wants more replicas of `w` than exist (as the extender counts)."""
        cm, st = ctx.cm, ctx.st
        wp = self.plan.workloads[cm.snapshot.workloads[w].key]
        running = np.bincount(cm.class_idx, weights=st.ready[w] + st.booting[w], minlength=len(cm.class_names))
        return short_classes(wp.by_class, {c: int(running[i]) for i, c in enumerate(cm.class_names)})

    def _costs(self, ctx: SimContext, w: int) -> np.ndarray:
        """Weighted cost per frame of one more replica on every allowed node (inf elsewhere), for
        the plan, the nodes' power state and the classes short now: `models.scoring.node_costs`
        asked once per kind of node (class, zone, pinned, active in the plan, powered, planned
        for `w`), as the planner's rankings ask it, since nodes alike in all that cost the same
        (tests/simulations/test_wattwise_costs.py checks that against asking for every node)."""
        cm, st = ctx.cm, ctx.st
        powered = (st.node_state == ON) | (st.node_state == WAKING)
        shorts = self._short_classes(ctx, w)
        key = (w, self.plan_version, powered.tobytes(), shorts)
        costs = self._cost_cache.get(key)
        if costs is None:
            allowed = np.flatnonzero(cm.eligible[w])
            kind = ((self._node_kind[allowed] * 2 + self.active[allowed]) * 2 + powered[allowed]) * 2 \
                + (self.planned[w, allowed] > 0)
            _, first, which = np.unique(kind, return_index=True, return_inverse=True)
            by_name = dict(self._by_name)
            names = []
            for i in allowed[first].tolist():
                node = by_name[cm.node_names[i]]
                if node.powered_on != bool(powered[i]):
                    by_name[node.name] = replace(node, powered_on=bool(powered[i]))
                names.append(node.name)
            wl = cm.snapshot.workloads[w]
            cost_of = {c.node: c.weighted_cost
                       for c in node_costs(self.snapshot, wl, names, active_nodes=self._active_names,
                                           planned_nodes=frozenset(self.plan.workloads[wl.key].by_node),
                                           short_classes=shorts, by_name=by_name, weights=self._weights_by_zone)}
            rep = np.array([cost_of.get(n, np.inf) for n in names])
            costs = np.full(cm.n_nodes, np.inf)
            costs[allowed] = rep[which.reshape(-1)]
            self._cost_cache[key] = costs
        return costs

    def extender_scores(self, ctx: SimContext, w: int, candidates: np.ndarray) -> np.ndarray:
        """The extender's 0..10 per candidate: the core's `candidate_scores` of their costs."""
        # a score depends only on the candidate's own cost and the cheapest one's
        # (`candidate_scores`), so each distinct cost among the candidates is scored once
        distinct, which = np.unique(self._costs(ctx, w)[candidates], return_inverse=True)
        scores = candidate_scores([c if c != np.inf else None for c in distinct.tolist()])
        return np.array(scores, dtype=float)[which.reshape(-1)]

    def place(self, ctx: SimContext, w: int, candidates: np.ndarray) -> int:
        extender = self.extender_scores(ctx, w, candidates) * self.timing.extender_weight * 10
        return pick_max(ctx, candidates, default_plugin_scores(ctx, w, candidates) + extender)

    def victims(self, ctx: SimContext, w: int, k: int) -> list[int]:
        """The nodes of the `k` pods the ReplicaSet controller deletes, in Kubernetes' own order
        over the deletion costs the plan gives the pods (the reconciler's, applied at once)."""
        pods, nodes = ctx.st.scale_down_pods(w)
        names = ctx.cm.node_names
        planned = {names[n]: c for n, c in _by_node(self.planned[w]).items()}
        costs = planned_deletion_costs(pods, planned)
        priced: dict = {}    # pods alike (one node, one phase) share one object: price each once
        pods = [priced.get((id(p), c)) or priced.setdefault((id(p), c), replace(p, deletion_cost=c))
                for p, c in zip(pods, costs)]
        return [nodes[i] for i in pods_to_delete(pods, k)]

    def tuning(self, cm) -> dict:
        return {"trigger": "KEDA external trigger (the WattWise scaler): no target to set, replicas from the plan",
                "scheduler": f"the shipped second scheduler, extender weight {self.timing.extender_weight}",
                **self.autoscaler_tuning(cm)}


class ReactiveWattwisePolicy(WattwisePolicy):
    """wattwise without pre-warming: plans for the demand seen, to measure what the forecast gives."""

    name = "wattwise-reactive"
    forecast = False


def _by_node(counts: np.ndarray) -> dict[int, int]:
    """A per-node count vector as the mapping the core takes (node index to count, non-zero only)."""
    return {int(n): int(counts[n]) for n in np.flatnonzero(counts)}


def _rows_by_node(counts: np.ndarray, n_rows: int) -> list[dict[int, int]]:
    """`_by_node` of every row of a [W, N] count matrix, from one pass over its non-zero cells."""
    out: list[dict[int, int]] = [{} for _ in range(n_rows)]
    rows, cols = np.nonzero(counts)
    for r, c, v in zip(rows.tolist(), cols.tolist(), counts[rows, cols].tolist()):
        out[r][c] = v
    return out
