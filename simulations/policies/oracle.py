"""`oracle`: the optimum with perfect knowledge of demand and carbon and no start-up delay.

Every `oracle_interval_s`, and when the objective's zone weights change (carbon matters only
under the carbon and balanced objectives), it calls the same planner with the true peak demand of
the coming interval (it knows the future), the carbon intensity now, no headroom and no scale-down window
(`PlannerSettings(headroom=0, scale_down_window_s=0)`), and start-up and wake energy amortised to
nothing. Its replicas appear where the plan puts them at once, and nodes switch on and off
instantly. A MILP per 15 s step would take hours, hence the interval; sizing for the interval's
peak costs it a little energy, so it is a near-lower bound (reported as such).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from wattwise.models.planner import plan as make_plan
from wattwise.simulations.context import SimContext
from wattwise.simulations.policies.base import Policy
from wattwise.simulations.snapshot_view import build_sim_snapshot, zone_weight_vector


class OraclePolicy(Policy):
    name = "oracle"
    direct = True

    def start(self, ctx: SimContext) -> None:
        base = ctx.cm.snapshot.settings
        self.settings = replace(base, headroom=0.0, scale_down_window_s=0.0, amortise_s=1e12)
        self.next_s = 0.0
        self.replans = 0
        self._cache: dict = {}
        self._index = {n: i for i, n in enumerate(ctx.cm.node_names)}
        self.weights = None

    def on_tick(self, ctx: SimContext) -> None:
        weights = zone_weight_vector(ctx, ctx.carbon_g_per_kwh) if ctx.step == 0 or np.any(
            ctx.carbon_g_per_kwh != ctx.inputs.carbon_g_per_kwh[ctx.step - 1]) else self.weights
        carbon_changed = ctx.step > 0 and np.any(weights != self.weights)
        self.weights = weights
        if ctx.now_s + 1e-9 < self.next_s and not carbon_changed:
            return
        steps = max(1, int(round(self.timing.oracle_interval_s / ctx.inputs.step_s)))
        end = min(ctx.step + steps, ctx.inputs.n_steps)
        if carbon_changed and ctx.now_s + 1e-9 < self.next_s:
            end = min(int(round(self.next_s / ctx.inputs.step_s)), ctx.inputs.n_steps)
        else:
            self.next_s = ctx.now_s + steps * ctx.inputs.step_s
        demand = ctx.inputs.demand_fps[ctx.step:end].max(axis=0)
        key = (tuple(demand.round(3)), tuple(weights.round(6)))   # what the plan depends on
        target = self._cache.get(key)
        if target is None:
            snap = build_sim_snapshot(ctx, demand, None, settings=self.settings)
            plan, _ = make_plan(snap)
            self.replans += 1
            cm = ctx.cm
            by_node = np.zeros((cm.n_workloads, cm.n_nodes), np.int64)
            for w, wl in enumerate(cm.snapshot.workloads):
                for node, count in plan.workloads[wl.key].by_node.items():
                    by_node[w, self._index[node]] = count
            active = np.zeros(cm.n_nodes, bool)
            active[[self._index[n] for n in plan.active_nodes]] = True
            target = (by_node, active | cm.pinned)
            if len(self._cache) < 4096:
                self._cache[key] = target
        self._apply(ctx, *target)

    def _apply(self, ctx: SimContext, by_node: np.ndarray, active: np.ndarray) -> None:
        st = ctx.st
        diff = by_node - st.ready
        for w, n in zip(*np.nonzero(diff < 0)):
            for _ in range(-diff[w, n]):
                st.remove_pod(int(w), int(n), ctx.now_s)
        for w, n in zip(*np.nonzero(diff > 0)):
            for _ in range(diff[w, n]):
                st.add_pod(int(w), int(n), ctx.now_s, instant=True)
        st.set_power_instant(active)

    def metric(self, ctx: SimContext):  # pragma: no cover - the oracle bypasses the HPA
        raise NotImplementedError
