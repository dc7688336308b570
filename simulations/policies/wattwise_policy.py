"""`wattwise`: the core planner and placement scoring, called as the scaler and extender call them.

- Scaler (KEDA external scaler): a background refresher builds a Snapshot (demand as the
  application reports it, i.e. served plus dropped FPS; carbon per zone now; the replicas that
  exist) and calls `models.planner.plan`. KEDA reads `plan.replicas(workload)` as the metric with
  target 1 on every HPA sync, so the HPA's tolerance, stabilisation and rate limits still apply;
  IsActive is `replicas > 0`. A MILP per 15 s step is too slow, and the real refresher also runs on
  an interval, so the plan is refreshed at most every KEDA polling interval (30 s) and only when an
  input moved materially (a workload's demand within 5% of the plan's capacity, or 10% below what
  it was sized for; a zone's carbon by 5%; a pod pending), and at least every 30 minutes.
- Extender (prioritize): `models.scoring.node_costs` with the plan's active nodes and the
  workload's planned nodes, then `scores_from_costs`; kube-scheduler adds score x weight x 10 to its
  own default plugin scores.
- Scale-down removes pods where the plan wants fewer (what `controller.kubernetes.io/
  pod-deletion-cost` set from the plan achieves).
- Node power: a node the plan needs is woken (`wake_s`); an empty node the plan lists as idle is
  suspended after a grace period.
"""

from __future__ import annotations

import logging

import numpy as np

from wattwise.models.planner import plan as make_plan
from wattwise.models.scoring import node_costs, scores_from_costs
from wattwise.simulations.cluster_model import OFF, ON, SLEEPING
from wattwise.simulations.context import SimContext
from wattwise.simulations.policies.base import Policy, default_plugin_scores, pick_max
from wattwise.simulations.snapshot_view import build_sim_snapshot

log = logging.getLogger(__name__)


class WattwisePolicy(Policy):
    name = "wattwise"

    def start(self, ctx: SimContext) -> None:
        self.plan = None
        self.state = None
        self.snapshot = None
        self.plan_version = 0
        self.replans = 0
        self.planned_demand = None
        self.planned_carbon = None
        self.last_plan_s = -np.inf
        self._score_cache: dict = {}
        self._name_index = {n: i for i, n in enumerate(ctx.cm.node_names)}
        self._replan(ctx)

    # --- the scaler's background refresher -----------------------------------------------------
    def _needs_replan(self, ctx: SimContext) -> bool:
        t = self.timing
        since = ctx.now_s - self.last_plan_s
        if since < t.replan_min_interval_s:
            return False
        if since >= t.replan_max_interval_s or ctx.st.pending.any():
            return True
        d = ctx.demand_fps
        if np.any(d > self.planned_capacity / (1 + t.replan_demand_change)):      # demand eats into the headroom
            return True
        if np.any(d < self.planned_demand * (1 - 2 * t.replan_demand_change)):   # demand fell: savings
            return True
        c, c0 = ctx.carbon_g_per_kwh, self.planned_carbon
        return bool(np.any(np.abs(c - c0) > 0.05 * np.maximum(c0, 1.0)))

    def _replan(self, ctx: SimContext) -> None:
        self.snapshot = build_sim_snapshot(ctx, ctx.demand_fps, self.state)
        self.plan, self.state = make_plan(self.snapshot)
        self.plan_version += 1
        self.replans += 1
        self.planned_demand = np.array([self.plan.workloads[w.key].demand_fps for w in ctx.cm.snapshot.workloads])
        self.planned_capacity = np.array([self.plan.workloads[w.key].capacity_fps for w in ctx.cm.snapshot.workloads])
        self.planned_carbon = ctx.carbon_g_per_kwh.copy()
        self.last_plan_s = ctx.now_s
        self._score_cache.clear()
        cm = ctx.cm
        self.active = np.zeros(cm.n_nodes, bool)
        self.active[[self._name_index[n] for n in self.plan.active_nodes]] = True
        self.planned = np.zeros((cm.n_workloads, cm.n_nodes), np.int64)
        for w, wl in enumerate(cm.snapshot.workloads):
            for node, count in self.plan.workloads[wl.key].by_node.items():
                self.planned[w, self._name_index[node]] = count

    def on_tick(self, ctx: SimContext) -> None:
        if self._needs_replan(ctx):
            self._replan(ctx)

    # --- KEDA ---------------------------------------------------------------------------------
    def metric(self, ctx: SimContext):
        """The plan's replicas, plus (make-before-break) the pods running off-plan while the planned
        ones are not all ready yet: Kubernetes never moves a pod, so a plan that puts replicas on
        other nodes than today's is reached by starting the new ones first and letting scale-down
        (pod-deletion-cost from the plan) remove the old ones."""
        st = ctx.st
        W = ctx.cm.n_workloads
        replicas = np.array([self.plan.replicas(w.key) for w in ctx.cm.snapshot.workloads], float)
        pods = st.ready + st.booting
        off_plan = np.maximum(pods - self.planned, 0).sum(axis=1)
        not_ready = np.maximum(self.planned - st.ready, 0).sum(axis=1)
        total = replicas + np.minimum(off_plan, not_ready)
        return total, np.ones(W), total > 0

    # --- the extender ---------------------------------------------------------------------------
    def place(self, ctx: SimContext, w: int, candidates: np.ndarray) -> int:
        key = (w, self.plan_version)
        scores = self._score_cache.get(key)
        if scores is None:
            cm = ctx.cm
            wl = cm.snapshot.workloads[w]
            allowed = [cm.node_names[n] for n in np.flatnonzero(cm.eligible[w])]
            costs = node_costs(self.snapshot, wl, allowed, active_nodes=set(self.plan.active_nodes),
                               planned_nodes=set(self.plan.workloads[wl.key].by_node))
            by_name = scores_from_costs(costs) if self.timing.extender_scoring == "core" else ratio_scores(costs)
            scores = np.zeros(cm.n_nodes)
            for name, s in by_name.items():
                scores[self._name_index[name]] = s
            self._score_cache[key] = scores
        total = default_plugin_scores(ctx, w, candidates) + scores[candidates] * self.timing.extender_weight * 10
        return pick_max(ctx, candidates, total)

    def victims(self, ctx: SimContext, w: int, k: int) -> list[int]:
        st = ctx.st
        ready = st.ready[w].astype(np.int64).copy()
        booting = st.booting[w].astype(np.int64).copy()
        planned = self.planned[w]
        out = []
        for _ in range(k):
            total = ready + booting
            if total.sum() == 0:
                break
            excess = total - planned
            # deletion cost: most over plan first, then not-ready, then nodes the plan keeps idle
            rank = excess * 4 + (booting > 0) * 2 + (~self.active) * 1
            pool = np.flatnonzero(total > 0)
            n = int(pool[np.argmax(rank[pool] * 1_000_000 + pool)])
            if booting[n] > 0:
                booting[n] -= 1
            else:
                ready[n] -= 1
            out.append(n)
        return out

    # --- node power -----------------------------------------------------------------------------
    def manage_nodes(self, ctx: SimContext) -> None:
        cm, st = ctx.cm, ctx.st
        asleep = (st.node_state == OFF) | (st.node_state == SLEEPING)
        for n in np.flatnonzero(self.active & asleep):
            st.wake(int(n), ctx.now_s)
        # pods that fit nowhere awake: wake the plan's best allowed sleeping node for them
        for w in np.flatnonzero(st.pending > 0):
            room = cm.eligible[w] & st.fits(w)
            if (room & (st.node_state != OFF) & (st.node_state != SLEEPING)).any():
                continue
            sleepers = np.flatnonzero(room & asleep)
            if len(sleepers):
                n = int(sleepers[np.argmax(self.planned[w, sleepers] * 1000 + cm.cap_fps[w, sleepers])])
                st.wake(n, ctx.now_s)
        pods = st.pods_on()
        idle = (st.node_state == ON) & ~self.active & ~cm.pinned & (pods == 0) & \
            (ctx.now_s - st.empty_since_s >= self.timing.idle_grace_s)
        for n in np.flatnonzero(idle):
            st.sleep(int(n), ctx.now_s, self.timing.sleep_s)


def ratio_scores(costs) -> dict[str, int]:
    """EXPERIMENT, not what the extender does today (see README, "findings"): 0..10 in proportion to
    the cheapest candidate's cost over each node's, so a node twice as dear scores 5 whatever the
    dearest candidate costs. `models.scoring.scores_from_costs` is linear between the cheapest and
    the dearest candidate, so one very dear node (a sleeping GPU node) squeezes every cheap node
    into the same top score, and kube-scheduler's LeastAllocated then decides."""
    if not costs:
        return {}
    lo = min(c.weighted_cost for c in costs)
    return {c.node: int(round(10 * lo / c.weighted_cost)) if c.weighted_cost > 0 else 10 for c in costs}
