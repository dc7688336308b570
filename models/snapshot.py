"""The planner's input: a frozen snapshot of the world, and the policy state carried between calls."""

from __future__ import annotations

import math

from dataclasses import dataclass, field
from typing import Mapping

from wattwise.models.cluster import Node, NodeClass
from wattwise.models.energy import WorkloadClassModel
from wattwise.models.errors import InvalidInputError
from wattwise.models.frozen import freeze
from wattwise.models.ports import CarbonReading
from wattwise.models.priors import prior_model
from wattwise.models.workload import Workload

OBJECTIVES = ("energy", "carbon", "balanced")

DEFAULT_CARBON_G_PER_KWH = 500.0
"""Grid carbon intensity (gCO2eq/kWh) counted for a zone whose reading is missing or untrusted
("stale", "default"): dirtier than most grids, so the zone WattWise knows least about never looks
cheaper than one with a reading. The one default: `PlannerSettings.carbon_default_g_per_kwh`
starts from it, and the carbon providers' `default_g_per_kwh` should too."""


@dataclass(frozen=True)
class Objective:
    """What to minimise. `energy`: watts. `carbon`: grams per hour. `balanced`: a weighted mix
    with `carbon_weight` in [0, 1] (0.5 unless given), both normalised to the cluster's mean
    carbon intensity so neither unit dominates."""

    kind: str = "energy"
    carbon_weight: float | None = None

    def __post_init__(self):
        if self.kind not in OBJECTIVES:
            raise InvalidInputError("objective", f"unknown objective {self.kind!r}", "use energy, carbon or balanced")
        if self.carbon_weight is not None and not 0.0 <= self.carbon_weight <= 1.0:
            raise InvalidInputError("objective.carbon_weight", "must be between 0 and 1")

    @property
    def carbon_share(self) -> float:
        if self.kind == "energy":
            return 0.0
        if self.kind == "carbon":
            return 1.0
        return 0.5 if self.carbon_weight is None else self.carbon_weight


@dataclass(frozen=True)
class PlannerSettings:
    """Tuning, all in seconds of the injected clock or plain fractions.

    headroom: capacity planned above demand (0.1 = 10%).
    scale_down_window_s: demand is taken as its peak over this window, so replicas go down only
        after demand has stayed low this long (like the HPA's scale-down stabilisation).
    amortise_s: horizon over which a new replica's start-up energy and a node's wake energy are
        charged against its savings; a move must pay back within it.
    mip_node_limit: the MILP stops after this many branch-and-bound nodes and keeps the best
        plan found. Effort is counted in work, not seconds, so the same snapshot gives the same
        plan on a busy machine and an idle one (scaler replicas must agree).
    time_budget_s: a wall-clock safety cap on the solver for pathological inputs; a plan made
        when it hit says so in `Plan.solver` ("time-limit") and may then differ between runs.
    milp_at_scale: also run the MILP on large problems (grouped nodes, continuous replicas),
        after greedy and LP rounding; off by default, as it rarely improves on them there.
    carbon_default_g_per_kwh: intensity counted for a zone whose reading is missing, and the
        least counted for one whose reading is untrusted (`models.costs.zone_intensity`).
    carbon_max_age_s: a reading whose value is older than this (its own time, not when it was
        fetched: a provider may keep answering an old value) is untrusted like a stale one.
    """

    headroom: float = 0.10
    scale_down_window_s: float = 300.0
    amortise_s: float = 3600.0
    time_budget_s: float = 10.0
    mip_node_limit: int = 500
    mip_rel_gap: float = 0.01
    exact_below_nodes: int = 48
    milp_at_scale: bool = False
    unmet_penalty_margin: float = 20.0
    carbon_default_g_per_kwh: float = DEFAULT_CARBON_G_PER_KWH
    carbon_max_age_s: float = 7200.0     # two hours: hourly data is up to an hour old when fresh

    def __post_init__(self):
        if not 0 <= self.headroom <= 5:
            raise InvalidInputError("settings.headroom", "must be between 0 and 5 (a fraction)")
        if not 0 <= self.carbon_default_g_per_kwh < float("inf"):
            raise InvalidInputError("settings.carbon_default_g_per_kwh", "must be a finite number >= 0")
        for name in ("scale_down_window_s", "amortise_s", "time_budget_s", "mip_rel_gap"):
            value = getattr(self, name)      # nan would pass `< 0` and then silently disable the rule
            if not (math.isfinite(value) and value >= 0):
                raise InvalidInputError(f"settings.{name}", f"must be a finite number >= 0, got {value!r}")
        for name in ("carbon_max_age_s", "unmet_penalty_margin"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise InvalidInputError(f"settings.{name}", f"must be a finite number > 0, got {value!r}")


def _frozen(mapping) -> Mapping:
    return freeze(mapping)


@dataclass(frozen=True)
class PolicyState:
    """What the planner remembers between calls (returned with each plan, passed back next time).

    placements: workload key -> node -> replicas planned last time.
    demand_history: workload key -> ((t_s, demand_fps), ...) within the scale-down window.
    trusted: workload key -> (demand_fps, replicas) last planned on trustworthy telemetry.
    """

    placements: Mapping[str, Mapping[str, int]] = field(default_factory=lambda: _frozen({}))
    demand_history: Mapping[str, tuple[tuple[float, float], ...]] = field(default_factory=lambda: _frozen({}))
    trusted: Mapping[str, tuple[float, int]] = field(default_factory=lambda: _frozen({}))
    updated_s: float | None = None

    def total(self, workload: str) -> int:
        return sum(self.placements.get(workload, {}).values())


@dataclass(frozen=True)
class Snapshot:
    now_s: float
    node_classes: Mapping[str, NodeClass]
    nodes: tuple[Node, ...]
    workloads: tuple[Workload, ...]
    models: Mapping[tuple[str, str], WorkloadClassModel] = field(default_factory=lambda: _frozen({}))
    carbon: Mapping[str, CarbonReading] = field(default_factory=lambda: _frozen({}))
    objective: Objective = Objective()
    settings: PlannerSettings = PlannerSettings()
    state: PolicyState = PolicyState()

    def model(self, workload: Workload, node_class: NodeClass) -> WorkloadClassModel | None:
        """The measured model of the pair, else one by workload model type, else a prior."""
        m = self.models.get((workload.key, node_class.name)) or self.models.get((workload.model_type, node_class.name))
        return m if m is not None else prior_model(workload, node_class)

    def with_models(self, models: Mapping[tuple[str, str], WorkloadClassModel]) -> "Snapshot":
        from dataclasses import replace

        return replace(self, models=_frozen(models))


def build_snapshot(now_s, node_classes, nodes, workloads, models=None, carbon=None, objective=None,
                   settings=None, state=None) -> Snapshot:
    """Snapshot from plain collections, checking references between them."""
    classes = dict(node_classes) if isinstance(node_classes, Mapping) else {c.name: c for c in node_classes}
    for n in nodes:
        if n.node_class not in classes:
            raise InvalidInputError(f"nodes.{n.name}.node_class", f"unknown node class {n.node_class!r}")
    return Snapshot(now_s=float(now_s), node_classes=_frozen(classes), nodes=tuple(nodes), workloads=tuple(workloads),
                    models=_frozen(models), carbon=_frozen(carbon), objective=objective or Objective(),
                    settings=settings or PlannerSettings(), state=state or PolicyState())
