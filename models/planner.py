"""The decision core: `plan(snapshot) -> (Plan, next PolicyState)`.

A pure function. No I/O, no clock reads, no globals: the KEDA scaler, the scheduler extender and
the simulator all call it with a snapshot and get the same answer for the same snapshot.

Steps: work out the demand to plan for (`PlanningDemand`: the peak over the scale-down window,
or, when telemetry is not to be trusted, what `hold_untrusted`, the one rule for that, says), find
the allowed (workload, node group) pairs (TEE, accelerator and latency are hard constraints),
solve the MILP in `milp.py` within the time budget (greedy fallback when it finds nothing), pack
replicas onto nodes, and explain.

Where plans cost the same, every path (greedy, LP rounding, the MILP's pick among candidates, the
local search, packing) keeps replicas where the previous plan ran them, then puts new ones on
nodes already running replicas (`milp.kept_running`), never on whichever equal node sorts first:
a count change only adds or removes replicas. Moves that pay back their start-up energy happen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from wattwise.models.costs import startup_energy_j, wake_cost_w, zone_intensity, zone_weights
from wattwise.models.eligibility import hard_reason
from wattwise.models.fallback import solve_greedy
from wattwise.models.frozen import FrozenMap
from wattwise.models.grouping import group_nodes
from wattwise.models.improve import improve
from wattwise.models.milp import (TIE_W, MilpProblem, MilpSolution, cover_unmet, evaluate, kept_running, solve,
                                  solve_lp_rounding)
from wattwise.models.packing import pack_group
from wattwise.models.plan import Placement, Plan, WorkloadPlan
from wattwise.models.scoring import node_costs
from wattwise.models.snapshot import PolicyState, Snapshot
from wattwise.models.unplaced import unplaced_replicas
from wattwise.models.workload import Demand, Workload


@dataclass(frozen=True)
class PlanningDemand:
    """What the planner plans one workload for.

    fps: demand to cover (before headroom): the peak over the scale-down window, or the held
        demand when telemetry is not trustworthy (`hold_untrusted`).
    floor: fewest replicas (`min_replicas`, raised by a hold), capped at `max_replicas`.
    held: telemetry was not trustworthy, so the plan holds (`WorkloadPlan.held`).
    history: ((t_s, fps), ...) within the window, carried in the next `PolicyState`.
    note: why the demand is held, or what pre-warming added, for the plan's reasons.
    trusted_before: False when held with no trustworthy demand ever planned for the workload:
        the replicas are then no basis to scale on (`WorkloadPlan.no_trusted_demand`).
    """

    fps: float
    floor: int
    held: bool = False
    history: tuple[tuple[float, float], ...] = ()
    note: str = ""
    trusted_before: bool = True
    forecast_added_fps: float = 0.0     # what pre-warming added above the window's peak


def hold_untrusted(workload: Workload, state: PolicyState, history: tuple[tuple[float, float], ...]) -> PlanningDemand:
    """THE rule for demand that is not trustworthy (missing, stale or absurd telemetry): never
    scale below what the last trustworthy data says the SLA needs.

    Plans for the highest of the demand last planned on trustworthy data, the demand still in the
    scale-down window and whatever value came with the untrustworthy reading, and never for fewer
    replicas than the last trustworthy plan gave (nor than the previous plan placed). Untrustworthy
    demand never enters the window's history. Every door gets this from the plan (`held`,
    `no_trusted_demand`); none keeps its own copy of the last good value."""
    trusted = state.trusted.get(workload.key)
    trusted_fps, trusted_replicas = trusted if trusted is not None else (0.0, 0)
    fps = max([trusted_fps, workload.demand_fps] + [d for _, d in history])
    floor = max(workload.min_replicas, trusted_replicas, state.total(workload.key))
    why = workload.demand.note or "missing or stale"
    if trusted is None:
        note = (f"telemetry not trustworthy ({why}) and never trustworthy before: planning for {fps:.1f} fps "
                f"and never fewer than {floor} replicas; no trustworthy basis to scale on yet")
    else:
        note = (f"telemetry not trustworthy ({why}): planning for {fps:.1f} fps and never fewer than "
                f"{floor} replicas, the last trustworthy plan")
    return PlanningDemand(fps, min(floor, workload.max_replicas), True, history, note, trusted is not None)


def _planning_demand(snapshot: Snapshot) -> dict[str, PlanningDemand]:
    """Per workload key: what to plan for (see `PlanningDemand`)."""
    s, st = snapshot.settings, snapshot.state
    out = {}
    for w in snapshot.workloads:
        history = tuple((t, d) for t, d in st.demand_history.get(w.key, ()) if t >= snapshot.now_s - s.scale_down_window_s)
        if w.demand.trustworthy:
            history = history + ((snapshot.now_s, w.demand_fps),)
            peak = max(d for _, d in history)
            expected = w.demand.expected_fps
            added = max(0.0, expected - peak) if expected is not None and math.isfinite(expected) else 0.0
            note = (f"pre-warming: {peak + added:.1f} fps expected within {w.demand.lead_s:.0f} s, the next "
                    f"refresh plus a node's and a replica's start-up, {added:.1f} fps above the window's peak"
                    if added > 0 else "")
            out[w.key] = PlanningDemand(peak + added, min(w.min_replicas, w.max_replicas), history=history,
                                        note=note, forecast_added_fps=added)
        else:
            out[w.key] = hold_untrusted(w, st, history)
    return out


def _pair_models(snapshot: Snapshot, groups) -> dict[tuple[str, str], object]:
    """Energy model per (workload key, class name), computed once per plan (priors are not free)."""
    out: dict[tuple[str, str], object] = {}
    for w in snapshot.workloads:
        for cls in {g.node_class.name: g.node_class for g in groups}.values():
            out[(w.key, cls.name)] = snapshot.model(w, cls)
    return out


def eligibility(snapshot, groups, models) -> dict[tuple[str, int], bool]:
    """Hard constraints per (workload key, group index): the same verdict for all of a group."""
    return {(w.key, g.index): hard_reason(w, g.nodes[0], g.node_class, models[(w.key, g.node_class.name)]) is None
            for w in snapshot.workloads for g in groups}


def usable_classes(snapshot: Snapshot) -> dict[str, frozenset[str]]:
    """Per workload key, the node classes it may run on: those of the groups `eligibility` admits
    it to (taints, placement rules, TEEs, GPUs, models, latency), the planner's own rule."""
    placements = tuple(dict.fromkeys(w.placement for w in snapshot.workloads))
    groups = group_nodes(snapshot.nodes, dict(snapshot.node_classes), snapshot.settings.exact_below_nodes, placements)
    eligible = eligibility(snapshot, groups, _pair_models(snapshot, groups))
    return {w.key: frozenset(g.node_class.name for g in groups if eligible[(w.key, g.index)])
            for w in snapshot.workloads}


def _build_problem(snapshot, groups, demand, models, eligible):
    zones = {g.zone for g in groups}
    k = zone_weights(snapshot, zones)
    amortise = max(snapshot.settings.amortise_s, 1.0)
    wl = list(snapshot.workloads)
    rows = []  # (w, g, cap, a, b, e, prev, copies)
    group_of = {n.name: g.index for g in groups for n in g.nodes}
    for wi, w in enumerate(wl):
        key = w.key
        prev_by_group: dict[int, int] = {}   # replicas the previous plan placed in each group
        for name, count in snapshot.state.placements.get(key, {}).items():
            gi = group_of.get(name)
            if gi is not None:
                prev_by_group[gi] = prev_by_group.get(gi, 0) + count
        for g in groups:
            if not eligible[(key, g.index)]:
                continue
            model = models[(key, g.node_class.name)]
            copies = w.footprint.max_copies_in(g.free_per_node)
            if copies <= 0:
                continue
            cap = model.capacity_fps
            a = model.intercept_w
            b = (model.replica_power_w(cap) - a) / cap
            e = startup_energy_j(model, g.node_class, w.confidentiality.required) / amortise
            prev = prev_by_group.get(g.index, 0)
            rows.append((wi, g.index, cap, k[g.zone] * a, k[g.zone] * max(b, 0.0), k[g.zone] * e, prev, min(copies, 10_000)))
    arr = np.array(rows, dtype=float).reshape(-1, 8)
    awake_w = np.array([k[g.zone] * (g.node_class.idle_w - g.node_class.power.sleep_w) for g in groups])
    woken_w = np.array([k[g.zone] * wake_cost_w(g.node_class, amortise) for g in groups])
    pinned = np.array([g.pinned for g in groups], dtype=bool)
    fps = np.array([demand[w.key].fps for w in wl], dtype=float)
    node_w = np.maximum(awake_w, woken_w)
    # Unmet frames cost more than the dearest way to serve one (a whole replica on a node woken
    # for it), times a margin; a bigger constant only hurts the solver's numerics.
    worst = max([1.0] + [(r[3] + r[4] * r[2] + r[5] + node_w[int(r[1])]) / r[2] for r in rows])
    return MilpProblem(
        pair_workload=arr[:, 0].astype(int), pair_group=arr[:, 1].astype(int), cap=arr[:, 2], a_w=arr[:, 3], b_w=arr[:, 4],
        e_w=arr[:, 5], prev=arr[:, 6], copies=arr[:, 7],
        demand=fps, floor=np.array([demand[w.key].floor for w in wl], dtype=float),
        max_r=np.array([w.max_replicas for w in wl], dtype=float),
        cpu_m=np.array([w.footprint.cpu_m for w in wl], dtype=float),
        mem_mib=np.array([w.footprint.memory_mib for w in wl], dtype=float),
        gpu=np.array([w.footprint.gpu for w in wl], dtype=float),
        on_w=np.where(pinned, 0.0, awake_w), wake_w=woken_w,
        on_count=np.array([g.on_count for g in groups], dtype=float),
        off_count=np.array([g.count - g.on_count for g in groups], dtype=float),
        on_min=np.array([g.on_count if g.pinned else 0 for g in groups], dtype=float),
        room_cpu_m=np.array([g.free_per_node.cpu_m for g in groups], dtype=float),
        room_mem_mib=np.array([g.free_per_node.memory_mib for g in groups], dtype=float),
        room_gpu=np.array([g.free_per_node.gpu for g in groups], dtype=float),
        headroom=np.array([w.headroom_or(snapshot.settings.headroom) for w in wl], dtype=float),
        unmet_penalty=snapshot.settings.unmet_penalty_margin * worst)


EXACT_PAIRS = 400  # small clusters (one node per group) with at most this many pairs get the exact MILP


def _solve(problem: MilpProblem, settings, per_node: bool) -> MilpSolution:
    """The best of: greedy, LP rounding (large problems), and the MILP (exact on small problems).
    The reported gap is against the best proven lower bound (LP or MILP dual bound). No wall-clock
    decision is taken here, so equal snapshots give equal plans (see PlannerSettings)."""
    candidates = [solve_greedy(problem)]
    bound = -math.inf
    if len(problem.pair_workload):
        exact = per_node and len(problem.pair_workload) <= EXACT_PAIRS
        rounded = solve_lp_rounding(problem)  # also proves a lower bound
        if rounded is not None:
            candidates.append(rounded)
            bound = max(bound, rounded.bound)
        best = min(candidates, key=lambda c: c.objective)
        # At scale the MILP rarely beats greedy and LP rounding (measured: it neither improves on
        # the LP bound nor finds better incumbents in seconds), so there it runs only on request.
        # Where the best plan is already proven within the gap tolerance, it is not needed at all.
        if (exact or settings.milp_at_scale) and _gap(best.objective, bound) > settings.mip_rel_gap:
            milp_solution, milp_bound = solve(problem, settings.time_budget_s, settings.mip_rel_gap,
                                              integer_replicas=exact, node_limit=settings.mip_node_limit)
            bound = max(bound, milp_bound)
            if milp_solution is not None:
                candidates.append(milp_solution)
    best = _polish(problem, candidates[1:] + candidates[:1])
    x, v, z = cover_unmet(problem, best.x, best.v, best.z)
    status = best.status + ("+repair" if (x != best.x).any() else "")
    return evaluate(problem, x, v, z, bound, status)


def _polish(problem: MilpProblem, candidates: list[MilpSolution]) -> MilpSolution:
    """Local search from each candidate in turn, the relaxation-based ones first (their starts
    carry the LP's global view and polish best); a start already dearer than the best polished
    plan is skipped. That halves the search time at 1,000 nodes x 100 workloads with no loss
    there; at 100 x 100 the median gap went from 2.40% to 2.63% (benchmarks/planner_bench.py).
    Of equally cheap plans, the one keeping most replicas where they run wins."""
    best: MilpSolution | None = None
    best_kept: tuple[int, tuple[int, ...], int] = (0, (), 0)
    for c in candidates:
        if best is None or c.objective < best.objective + TIE_W:
            polished = improve(problem, c)
            kept = kept_running(problem, polished.x)
            if best is None or polished.objective < best.objective - TIE_W or \
                    (polished.objective <= best.objective + TIE_W and kept > best_kept):
                best, best_kept = polished, kept
    assert best is not None, "no candidate to polish"   # _solve always passes greedy's
    return best


def _gap(objective: float, bound: float) -> float:
    return (objective - bound) / abs(objective) if math.isfinite(bound) and objective else math.inf


def in_canonical_order(snapshot: Snapshot) -> Snapshot:
    """`snapshot` with nodes by name and workloads by key. The solver breaks ties between equally
    good plans by input order, so without this two doors (or two scaler replicas) reading the
    same cluster in another order could place the same replicas on other nodes."""
    names = [n.name for n in snapshot.nodes]
    keys = [w.key for w in snapshot.workloads]
    if names == sorted(names) and keys == sorted(keys):
        return snapshot
    return replace(snapshot, nodes=tuple(sorted(snapshot.nodes, key=lambda n: n.name)),
                   workloads=tuple(sorted(snapshot.workloads, key=lambda w: w.key)))


class PlanCache:
    """What one caller's successive plans share while the cluster stands still: the node groups
    (for the very same `nodes` tuple, node classes, grouping threshold and placement rules) and,
    for those groups and the same workloads apart from their demand and the same energy models,
    each pair's energy model and hard-constraint verdict. At 1,000 nodes grouping them and judging
    every pair took a third of a plan, and between two plans usually only demand has moved.

    A door that plans again and again (the simulator; the scaler's refresher may too) passes one
    to `plan`; the plan is the same with or without it. Nodes are compared by identity, so a
    caller gets hits only when it hands over the same tuple while no node changed (Nodes are
    frozen, so the same tuple is the same cluster)."""

    def __init__(self) -> None:
        self._nodes: tuple | None = None
        self._groups_key: tuple | None = None
        self._groups: list | None = None
        self._pairs_key: tuple | None = None
        self._pairs: tuple[dict, dict] | None = None

    def groups(self, snapshot: Snapshot, placements: tuple) -> list:
        key = (dict(snapshot.node_classes), snapshot.settings.exact_below_nodes, placements)
        if self._groups is None or snapshot.nodes is not self._nodes or key != self._groups_key:
            self._groups = group_nodes(snapshot.nodes, key[0], key[1], placements)
            self._nodes, self._groups_key = snapshot.nodes, key
        return self._groups

    def pairs(self, snapshot: Snapshot, groups: list) -> tuple[dict, dict]:
        """(models, eligible) as `_pair_models` and `eligibility` give them."""
        workloads = tuple(w.with_demand(_NO_DEMAND) for w in snapshot.workloads)
        last = self._pairs_key
        hit = (last is not None and last[0] is groups and last[1] == workloads
               and (last[2] is snapshot.models or last[2] == snapshot.models))
        if self._pairs is None or not hit:
            models = _pair_models(snapshot, groups)
            self._pairs = (models, eligibility(snapshot, groups, models))
            self._pairs_key = (groups, workloads, snapshot.models)
        return self._pairs


_NO_DEMAND = Demand()


def planning_problem(snapshot: Snapshot, cache: PlanCache | None = None):
    """(groups, demand, models, eligible, problem): the MILP a snapshot poses, and what built it.
    `cache`: what earlier plans of the same caller worked out (`PlanCache`)."""
    snapshot = in_canonical_order(snapshot)
    placements = tuple(dict.fromkeys(w.placement for w in snapshot.workloads))
    if cache is not None:
        groups = cache.groups(snapshot, placements)
    else:
        groups = group_nodes(snapshot.nodes, dict(snapshot.node_classes), snapshot.settings.exact_below_nodes, placements)
    demand = _planning_demand(snapshot)
    if cache is not None:
        models, eligible = cache.pairs(snapshot, groups)
    else:
        models = _pair_models(snapshot, groups)
        eligible = eligibility(snapshot, groups, models)
    return groups, demand, models, eligible, _build_problem(snapshot, groups, demand, models, eligible)


def plan(snapshot: Snapshot, cache: PlanCache | None = None) -> tuple[Plan, PolicyState]:
    """The plan for a snapshot, and the next policy state; the same whatever order the snapshot
    lists its nodes and workloads in, and with or without `cache` (`PlanCache`)."""
    snapshot = in_canonical_order(snapshot)
    groups, demand, models, eligible, problem = planning_problem(snapshot, cache)
    wl = list(snapshot.workloads)
    solution = _solve(problem, snapshot.settings, per_node=all(g.count == 1 for g in groups))
    solver = solution.status if solution.status.startswith(("greedy", "lp-")) else f"milp-{solution.status}"

    # replicas per group -> per node
    by_node: dict[str, dict[str, int]] = {w.key: {} for w in wl}
    not_packed = {w.key: 0 for w in wl}   # replicas the solution gave a group that packing found no node for
    active: set[str] = set()
    running: dict[str, int] = {}   # replicas of any workload per node, last plan: ties go to busy nodes
    for nodes in snapshot.state.placements.values():
        for name, count in nodes.items():
            running[name] = running.get(name, 0) + count
    for g in groups:
        pairs = np.where(problem.pair_group == g.index)[0]
        wanted = {int(problem.pair_workload[q]): int(solution.x[q]) for q in pairs if solution.x[q] > 0}
        if not wanted:
            continue
        previous = {wi: dict(snapshot.state.placements.get(wl[wi].key, {})) for wi in wanted}
        placed, missing, used = pack_group(g, wanted, {wi: wl[wi].footprint for wi in wanted}, previous,
                                           int(solution.nodes[g.index]), running)
        for wi, nodes in placed.items():
            by_node[wl[wi].key].update(nodes)
        for wi, n in missing.items():
            not_packed[wl[wi].key] += n
        active.update(used)
    if any(not_packed.values()):
        _place_leftovers(wl, groups, problem, by_node, not_packed, active)
    return _assemble(snapshot, groups, demand, models, eligible, by_node, not_packed, active, solution, solver)


def _place_leftovers(wl, groups, problem, by_node: dict[str, dict[str, int]], not_packed: dict[str, int],
                     active: set[str]) -> None:
    """Replicas the solution gave a group that packing found no node for, first-fit on the
    workload's other eligible groups, cheapest per frame first, awake nodes before sleeping ones.
    A group's room is a sum over its nodes (several nodes per group from `exact_below_nodes`
    nodes up), and replicas do not split between nodes: 2 x 28 free cores "hold" three 16-core
    replicas, yet two fit. Without this the third was asked for as unplaceable, Pending, while
    nodes with room idled. Updates `by_node`, `not_packed` and `active` in place."""
    room = {n.name: n.free for g in groups for n in g.nodes}
    footprint = {w.key: w.footprint for w in wl}
    for key, nodes in by_node.items():
        for name, count in nodes.items():
            room[name] = room[name] - footprint[key].scaled(count)
    cost = (problem.a_w + problem.b_w * problem.cap + problem.e_w) / np.maximum(problem.cap, 1e-9)
    for wi, w in enumerate(wl):
        left = not_packed[w.key]
        if left <= 0:
            continue
        pairs = sorted(np.where(problem.pair_workload == wi)[0], key=lambda q: (cost[q], int(problem.pair_group[q])))
        for q in pairs:
            g = groups[int(problem.pair_group[q])]
            for n in sorted(g.nodes, key=lambda n: (n.name not in active, n.name)):
                k = min(left, w.footprint.max_copies_in(room[n.name]))
                if k <= 0:
                    continue
                by_node[w.key][n.name] = by_node[w.key].get(n.name, 0) + k
                room[n.name] = room[n.name] - w.footprint.scaled(k)
                active.add(n.name)
                left -= k
                if left == 0:
                    break
            if left == 0:
                break
        not_packed[w.key] = left


def _serve(by_name, models, w, nodes_count, fps):
    """Split `fps` over placed replicas, cheapest joules per frame first: (power_w by node, capacity)."""
    options = []
    for node, count in nodes_count.items():
        m = models[(w.key, by_name[node].node_class)]
        options.append((m.w_per_fps, node, count, m))
    options.sort()
    left = fps
    power = {}
    capacity = 0.0
    for _, node, count, m in options:
        cap = m.capacity_fps * count
        served = min(left, cap)
        left -= served
        capacity += cap
        per_replica = served / count if count else 0.0
        power[node] = count * m.replica_power_w(per_replica)
    return power, capacity


RANKING_LENGTH = 16


def _assemble(snapshot, groups, demand, models, eligible, by_node, not_packed, active, solution, solver) -> tuple[Plan, PolicyState]:
    by_name = {n.name: n for n in snapshot.nodes}
    pinned = {n.name for g in groups if g.pinned for n in g.nodes}
    active_nodes = active | pinned
    ci = {z: zone_intensity(snapshot, z) for z in {n.zone for n in snapshot.nodes}}
    idle_sleep_w = {name: (cls.idle_w, cls.power.sleep_w) for name, cls in snapshot.node_classes.items()}
    node_power = {}
    for n in snapshot.nodes:
        node_power[n.name] = idle_sleep_w[n.node_class][0 if n.name in active_nodes else 1]
    plans = {}
    placements = []
    weights = zone_weights(snapshot, set(ci))
    states = _StateBuckets(groups, active_nodes)
    tees: dict[frozenset, tuple[str, ...]] = {}   # TEE kinds as a placement lists them, once per set
    described: dict = {}                           # each confidentiality as said, once per plan
    for w in snapshot.workloads:
        confidential = described.get(w.confidentiality)
        if confidential is None:
            confidential = described[w.confidentiality] = w.confidentiality.describe()
        d = demand[w.key]
        fps = d.fps
        nodes_count = {k: v for k, v in by_node[w.key].items() if v > 0}
        power, capacity = _serve(by_name, models, w, nodes_count, fps)
        for node, p in power.items():
            node_power[node] += p
        unmet = max(0.0, fps - capacity)
        by_class: dict[str, int] = {}
        for node, count in nodes_count.items():
            nd = by_name[node]
            by_class[nd.node_class] = by_class.get(nd.node_class, 0) + count
            tee = tees.get(nd.tee_ready)
            if tee is None:
                tee = tees[nd.tee_ready] = tuple(sorted(k.value for k in nd.tee_ready))
            placements.append(Placement(w.key, node, nd.node_class, nd.zone, count, tee, confidential))
        allowed_groups = [g for g in groups if eligible[(w.key, g.index)]]
        w_models = {g.node_class.name: models[(w.key, g.node_class.name)] for g in allowed_groups}
        ranking = _ranking(snapshot, w, allowed_groups, by_name, weights, active_nodes, nodes_count, states, w_models)
        allowed_count = sum(g.count for g in allowed_groups)
        why_none = _why_no_node(w, groups, models) if not allowed_count and unmet > 1e-6 else ""
        placed = sum(nodes_count.values())
        waiting = unplaced_replicas(fps, w.headroom_or(snapshot.settings.headroom), capacity, placed,
                                    unmet > 1e-6 or not_packed[w.key] > 0, w_models.values(), d.floor,
                                    snapshot.state.trusted.get(w.key, (0.0, 0))[1], w.max_replicas)
        reasons = _reasons(snapshot, w, fps, nodes_count, by_class, capacity, unmet, not_packed[w.key], allowed_count,
                           d.note, why_none, waiting)
        w_power = sum(power.values())
        w_carbon = sum(p * ci[by_name[n].zone] / 1000.0 for n, p in power.items())
        plans[w.key] = WorkloadPlan(
            workload=w.key, replicas=placed, by_class=FrozenMap(by_class),
            by_node=FrozenMap(nodes_count), demand_fps=fps, observed_demand_fps=w.demand_fps,
            capacity_fps=capacity, unmet_fps=unmet, power_w=w_power, carbon_g_per_h=w_carbon, held=d.held,
            ranking=ranking, reasons=tuple(reasons), no_trusted_demand=not d.trusted_before,
            forecast_added_fps=d.forecast_added_fps, unplaced_replicas=waiting)
    total_w = sum(node_power.values())
    carbon = sum(p * ci[by_name[n].zone] / 1000.0 for n, p in node_power.items())
    idle_nodes = tuple(sorted(n.name for n in snapshot.nodes if n.name not in active_nodes))
    cluster_reasons = [f"{len(active_nodes)} of {len(snapshot.nodes)} nodes active; {len(idle_nodes)} may idle",
                       f"solver {solver}" + (f", gap {solution.gap:.2%}" if math.isfinite(solution.gap) else "")]
    result = Plan(now_s=snapshot.now_s, objective=snapshot.objective.kind, workloads=FrozenMap(plans),
                  placements=tuple(placements), active_nodes=tuple(sorted(active_nodes)), idle_nodes=idle_nodes,
                  power_w=total_w, carbon_g_per_h=carbon, objective_value=solution.objective, solver=solver,
                  solver_gap=solution.gap, reasons=tuple(cluster_reasons))
    # the last trustworthy plan per workload (the demand planned for, window and forecast included, and
    # the replicas asked); workloads no longer in the snapshot are forgotten
    trusted = {w.key: (demand[w.key].fps, plans[w.key].asked_replicas) if w.demand.trustworthy else snapshot.state.trusted[w.key]
               for w in snapshot.workloads if w.demand.trustworthy or w.key in snapshot.state.trusted}
    state = PolicyState(
        placements=FrozenMap({k: FrozenMap(dict(v.by_node)) for k, v in plans.items()}),
        demand_history=FrozenMap({w.key: demand[w.key].history for w in snapshot.workloads}),
        trusted=FrozenMap(trusted), updated_s=snapshot.now_s)
    return result, state


class _StateBuckets:
    """Each group's nodes split once per plan by (active, powered on), in the group's order, with
    every node's position: a workload's ranking then only sets apart the few nodes it runs on."""

    def __init__(self, groups, active_nodes):
        self.lists: dict[int, dict[tuple, list[str]]] = {}
        self.where: dict[str, tuple[int, tuple, int]] = {}
        for g in groups:
            states: dict[tuple, list[str]] = {}
            for n in g.nodes:
                key = (n.name in active_nodes, n.powered_on)
                members = states.setdefault(key, [])
                self.where[n.name] = (g.index, key, len(members))
                members.append(n.name)
            self.lists[g.index] = states

    def buckets(self, groups, planned) -> list[list[str]]:
        """Up to RANKING_LENGTH members per (planned, active, powered on) state of each group."""
        mine: dict[tuple[int, tuple], list[tuple[int, str]]] = {}
        for name in planned:
            where = self.where.get(name)
            if where is not None:
                mine.setdefault(where[:2], []).append((where[2], name))
        out = []
        for g in groups:
            for key, members in self.lists[g.index].items():
                chosen = sorted(mine.get((g.index, key), ()))
                if not chosen:
                    out.append(members[:RANKING_LENGTH])
                    continue
                out.append([name for _, name in chosen[:RANKING_LENGTH]])
                skip = {name for _, name in chosen}
                rest = []
                for name in members:
                    if name not in skip:
                        rest.append(name)
                        if len(rest) == RANKING_LENGTH:
                            break
                if rest:
                    out.append(rest)
        return out


def _ranking(snapshot, w, allowed_groups, by_name, weights, active_nodes, nodes_count, states,
             models=None) -> tuple[str, ...]:
    """The best RANKING_LENGTH allowed nodes for one more replica, cheapest per frame first.

    Within a group, nodes in the same state (planned for this workload, active, awake, asleep)
    cost the same, so one representative per state is scored and its bucket expanded.
    """
    buckets = [(members[0], members) for members in states.buckets(allowed_groups, nodes_count)]  # (representative, members)
    costs = node_costs(snapshot, w, [rep for rep, _ in buckets], active_nodes=active_nodes,
                       planned_nodes=set(nodes_count), by_name=by_name, weights=weights, models=models)
    cost_of = {c.node: c.weighted_cost for c in costs}
    ranked = sorted((b for b in buckets if b[0] in cost_of), key=lambda b: (cost_of[b[0]], b[0]))
    out: list[str] = []
    for _, members in ranked:
        out += members[:RANKING_LENGTH - len(out)]
        if len(out) >= RANKING_LENGTH:
            break
    return tuple(out)


def _why_no_node(w, groups, models) -> str:
    """Why no node may run the workload: its hard reasons, most nodes first, with their counts."""
    counts: dict[str, int] = {}
    for g in groups:
        reason = hard_reason(w, g.nodes[0], g.node_class, models.get((w.key, g.node_class.name)))
        if reason:
            counts[reason] = counts.get(reason, 0) + g.count
    return "; ".join(f"{n} x {r}" for r, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _reasons(snapshot, w, fps, nodes_count, by_class, capacity, unmet, not_packed, allowed_count, note, why_none="",
             waiting=0):
    out = []
    if note:
        out.append(note)
    if fps > w.demand_fps + 1e-9 and not note:
        out.append(f"sized for {fps:.1f} fps, the peak of the last {snapshot.settings.scale_down_window_s:.0f} s "
                   f"(now {w.demand_fps:.1f} fps): scale-down waits for demand to stay low")
    if by_class:
        mix = ", ".join(f"{n} x {c}" for c, n in sorted(by_class.items()))
        out.append(f"{sum(nodes_count.values())} replicas ({mix}) give {capacity:.1f} fps for {fps:.1f} fps demanded "
                   f"(+{w.headroom_or(snapshot.settings.headroom):.0%} headroom)")
    elif fps <= 0:
        out.append("no demand: no replicas needed")
    if w.confidentiality.required:
        out.append(f"confidential: only nodes with TEE {w.confidentiality.describe()} ({allowed_count} of "
                   f"{len(snapshot.nodes)} nodes qualify)")
    if unmet > 1e-6:
        why = (f"no node qualifies ({why_none})" if why_none else "no node qualifies") if not allowed_count \
            else "qualifying nodes are full or max_replicas reached"
        out.append(f"cannot meet {unmet:.1f} of {fps:.1f} fps: {why}; confidentiality is never relaxed to make up the difference")
    if not_packed:
        out.append(f"{not_packed} replica(s) did not fit on the chosen nodes")
    if waiting:
        out.append(f"{waiting} more replica(s) asked for than any node has room for: they wait Pending for a node "
                   "autoscaler to add a qualifying node")
    return out
