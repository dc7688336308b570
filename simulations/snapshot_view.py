"""The simulated cluster as the core sees it: carbon per zone as the refresher reads it, the
objective's zone weights, and (for the oracle, which plans every step) a Snapshot built as the
refresher builds one (nodes with their power state, demand as the application reports it, carbon
per zone now, the replicas that exist as the previous state's placements)."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

import numpy as np

from wattwise.models.costs import zone_weights
from wattwise.models.ports import CarbonReading
from wattwise.models.snapshot import PolicyState, Snapshot
from wattwise.models.workload import Demand
from wattwise.simulations.cluster_model import ON, WAKING
from wattwise.simulations.context import SimContext


def current_placements(ctx: SimContext) -> dict[str, dict[str, int]]:
    cm, st = ctx.cm, ctx.st
    pods = st.ready + st.booting
    out = {}
    for w, wl in enumerate(cm.snapshot.workloads):
        nodes = np.flatnonzero(pods[w])
        out[wl.key] = {cm.node_names[n]: int(pods[w, n]) for n in nodes}
    return out


def carbon_readings(ctx: SimContext, g_per_kwh: np.ndarray):
    """Carbon per zone as the refresher reads it now (the replayed trace's value)."""
    return MappingProxyType({z: CarbonReading(zone=z, g_per_kwh=float(g_per_kwh[k]), at_s=ctx.now_s, source="trace")
                             for k, z in enumerate(ctx.inputs.zones)})


def zone_weight_vector(ctx: SimContext, g_per_kwh: np.ndarray) -> np.ndarray:
    """Per zone (`inputs.zones` order), the core's cost weight of a watt under the scenario's
    objective at these intensities (`models.costs.zone_weights`): under the energy objective it
    does not depend on carbon."""
    snap = replace(ctx.cm.snapshot, now_s=float(ctx.now_s), carbon=carbon_readings(ctx, g_per_kwh))
    k = zone_weights(snap, ctx.inputs.zones)
    return np.array([k[z] for z in ctx.inputs.zones])


def build_sim_snapshot(ctx: SimContext, demand_fps: np.ndarray, previous: PolicyState | None,
                       settings=None, carbon_g_per_kwh: np.ndarray | None = None, demand_history=None,
                       expected_fps: np.ndarray | None = None, lead_s: np.ndarray | None = None) -> Snapshot:
    """`demand_history`: the refresher's demand samples in the scale-down window (default: the
    previous state's, i.e. the samples of the previous plans). `expected_fps` and `lead_s`: the
    door's forecast (`models.forecast`), in the cluster model's workload order.

    Nodes are in name order and workloads in key order, as the refresher reads them (its
    inventory sorted by name, the registry's workloads by key): the planner breaks ties between
    equally good plans by input order, so another order can place replicas on other nodes."""
    cm, st = ctx.cm, ctx.st
    base = cm.snapshot
    powered = (st.node_state == ON) | (st.node_state == WAKING)
    nodes = cm.powered_nodes.nodes(powered)
    def demand(i: int) -> Demand:
        if expected_fps is None or not np.isfinite(expected_fps[i]):
            return Demand(total_fps=float(demand_fps[i]), trustworthy=True)
        return Demand(total_fps=float(demand_fps[i]), trustworthy=True, expected_fps=float(expected_fps[i]),
                      lead_s=float(lead_s[i]) if lead_s is not None else 0.0)

    workloads = tuple(sorted((replace(w, demand=demand(i)) for i, w in enumerate(base.workloads)),
                             key=lambda w: w.key))
    carbon = carbon_readings(ctx, ctx.carbon_g_per_kwh if carbon_g_per_kwh is None else carbon_g_per_kwh)
    prev = previous or PolicyState()
    state = PolicyState(placements=MappingProxyType({k: MappingProxyType(v) for k, v in current_placements(ctx).items()}),
                        demand_history=prev.demand_history if demand_history is None else demand_history,
                        trusted=prev.trusted, updated_s=prev.updated_s)
    return replace(base, now_s=float(ctx.now_s), nodes=nodes, workloads=workloads,
                   carbon=carbon, settings=settings or base.settings, state=state)
