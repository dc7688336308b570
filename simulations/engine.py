"""Run one policy over the replayed inputs, step by step on the simulation clock.

Each step: starting pods whose start-up is over become ready, nodes finish waking or suspending;
the policy looks at the world (the oracle sets the cluster directly); the HPA syncs that fall in
the step (every `hpa_sync_s`: several in a step longer than that) turn the policy's metric into a
replica count; pods are created (pending until a node with room is found, placed by the policy's
scoring among nodes that pass the filters) or deleted (the policy chooses which); the policy wakes
or suspends nodes (a node autoscaler may drain one: its pods' replacements are placed at once);
then physics integrates the step.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Callable

import numpy as np

from wattwise.simulations.cluster_model import ON, ClusterModel
from wattwise.simulations.cluster_state import ClusterState
from wattwise.simulations.context import SimContext
from wattwise.simulations.hpa import Hpa
from wattwise.simulations.inputs import SimInputs
from wattwise.simulations.physics import Physics
from wattwise.simulations.policies.base import Policy
from wattwise.simulations.recorder import Recorder
from wattwise.simulations.timing import ControlTiming

log = logging.getLogger(__name__)


def run_policy(policy: Policy, cm: ClusterModel, inputs: SimInputs, timing: ControlTiming, seed: int,
               progress: Callable[[int, int], None] | None = None) -> Recorder:
    st = ClusterState(cm)
    rng = np.random.default_rng(seed)
    slots = max(1, int(round(timing.drop_metric_window_s / inputs.step_s)))
    ctx = SimContext(cm=cm, st=st, inputs=inputs, timing=timing, rng=rng,
                     drop_history=np.zeros((slots, cm.n_workloads)),
                     cpu_util=np.zeros(cm.n_nodes), gpu_util=np.zeros(cm.n_nodes))
    physics = Physics(cm)
    window_s = policy.hpa_scale_down_window_s
    hpa = Hpa(cm.n_workloads, timing if window_s is None else replace(timing, hpa_scale_down_window_s=window_s))
    rec = Recorder(cm, inputs.n_steps, inputs.step_s)
    syncs_done = 0
    report_every = max(1, inputs.n_steps // 100)
    policy.start(ctx)
    if not policy.direct:  # begin where the HPA would settle for the first demand: no cold-start penalty
        _initial_replicas(ctx, policy)
        st.scaling_events = 0
    for k in range(inputs.n_steps):
        now = k * inputs.step_s
        ctx.step, ctx.now_s = k, now
        st.promote(now)
        st.advance_nodes(now)
        policy.on_tick(ctx)
        if not policy.direct:
            syncs_done = _hpa_syncs(ctx, policy, hpa, syncs_done, now + inputs.step_s)
            if st.pending.any():
                _schedule(ctx, policy)
            pending = st.pending.sum()
            policy.manage_nodes(ctx)
            if st.pending.sum() > pending:   # a node autoscaler evicted pods: their replacements are bound now
                _schedule(ctx, policy)
        demand = ctx.demand_fps
        result = physics.step(st, demand)
        ctx.drop_history[k % slots] = result.dropped_fps
        rho = np.divide(result.served_fps, result.capacity_fps, out=np.zeros(cm.n_workloads),
                        where=result.capacity_fps > 0)
        ctx.cpu_util = physics.cpu_base + rho @ physics.cpu_var
        ctx.gpu_util = physics.gpu_base + rho @ physics.gpu_var
        rec.record(k, demand, result, ctx.carbon_g_per_kwh, st.pods_on(),
                   int((st.node_state == ON).sum()), state=st)
        if progress is not None and (k % report_every == 0 or k == inputs.n_steps - 1):
            progress(k + 1, inputs.n_steps)
    rec.scaling_events = st.scaling_events
    rec.wakes = st.wakes
    return rec


def _initial_replicas(ctx: SimContext, policy: Policy) -> None:
    """Start with the ready replicas the policy's scaling would settle at for the first step's
    demand (`Policy.initial_replicas`), placed by the policy, so no policy pays for an artificial
    cold start."""
    st = ctx.st
    lo, hi = policy.replica_bounds(ctx)
    st.pending[:] = np.clip(policy.initial_replicas(ctx), lo, hi).astype(np.int64)
    _schedule(ctx, policy, instant=True)


def _hpa_syncs(ctx: SimContext, policy: Policy, hpa: Hpa, syncs_done: int, step_end_s: float) -> int:
    """Run the HPA syncs that fall in this step (every `hpa_sync_s` from 0, before `step_end_s`),
    each at its own time so its windows count seconds, all with the step's metric and acting on the
    cluster at the step's time; return the number of syncs run so far.

    A step longer than the sync period (60 s against 15 s) thus gets its four syncs, and scale-up
    compounds within it as it does in a real cluster."""
    sync_s = ctx.timing.hpa_sync_s
    if syncs_done * sync_s >= step_end_s - 1e-9:
        return syncs_done
    metric = policy.metric(ctx)
    bounds = policy.replica_bounds(ctx)
    while syncs_done * sync_s < step_end_s - 1e-9:
        _hpa_sync(ctx, policy, hpa, syncs_done * sync_s, metric, bounds)
        syncs_done += 1
    return syncs_done


def _hpa_sync(ctx: SimContext, policy: Policy, hpa: Hpa, sync_at_s: float, metric, bounds) -> None:
    st = ctx.st
    total, target, active = metric
    lo, hi = bounds
    current = (st.ready.sum(axis=1) + st.booting.sum(axis=1) + st.pending)
    desired = hpa.desired(sync_at_s, current, total, target, lo, hi, active)
    for w in np.flatnonzero(desired != current):
        delta = int(desired[w] - current[w])
        if delta > 0:
            st.pending[w] += delta
            continue
        drop = min(-delta, int(st.pending[w]))
        st.pending[w] -= drop
        k = -delta - drop
        if k > 0:
            for n in policy.victims(ctx, int(w), k):
                st.remove_pod(int(w), n, ctx.now_s)


def _schedule(ctx: SimContext, policy: Policy, instant: bool = False) -> None:
    """Place pending pods one at a time (as kube-scheduler does); after each placement only the
    chosen node's room changes, so the candidate set is updated for that node alone."""
    st = ctx.st
    for w in np.flatnonzero(st.pending > 0):
        w = int(w)
        candidates = np.flatnonzero(policy.allowed(ctx, w) & st.schedulable & st.fits(w))
        cm = ctx.cm
        while st.pending[w] > 0 and len(candidates):
            n = policy.place(ctx, w, candidates)
            st.add_pod(w, n, ctx.now_s, instant=instant)
            st.pending[w] -= 1
            if (st.free_cpu_m[n] < cm.w_cpu_m[w] or st.free_mem_mib[n] < cm.w_mem_mib[w]
                    or st.free_gpu[n] < cm.w_gpu[w]):
                candidates = candidates[candidates != n]
