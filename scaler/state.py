"""What the scaler answers from: the latest plans, swapped in whole by the refresher.

The core plans with one objective per snapshot, while each ScaledObject may ask for its own
(`objective` key). So the refresher plans every workload once per objective in use, and each
workload reads its replicas from the plan of its own objective. The rest of WattWise (the scheduler
extender, the deletion-cost reconciler) reads `served_view` through `PlanSource.current()`: the
default objective's view, through which each workload finds its own objective's
(`PlanView.for_workload`), so KEDA's count and the pods' placement come from one plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from types import MappingProxyType
from typing import Mapping

from wattwise.models.snapshot import Objective
from wattwise.runtime import PlanView


def _empty() -> Mapping:
    return MappingProxyType({})


@dataclass(frozen=True)
class ScalerState:
    version: int
    now_s: float                                   # the quantised time of the plans in `views`
    default_objective: Objective
    views: Mapping[Objective, PlanView]
    degraded_reasons: tuple[str, ...] = ()
    staleness_s: Mapping[str, float] = field(default_factory=_empty)   # workload -> age of its last trustworthy demand
    objectives: Mapping[str, Objective] = field(default_factory=_empty)  # workload -> the objective it asks for

    @property
    def degraded(self) -> bool:
        return bool(self.degraded_reasons)

    @property
    def default_view(self) -> PlanView:
        return self.views[self.default_objective]

    def view_for(self, objective: Objective | None) -> PlanView:
        return self.views.get(objective or self.default_objective) or self.default_view

    @cached_property
    def served_view(self) -> PlanView:
        """The default view, each workload that asks for another objective pointing at that
        objective's view (computed once per state: readers tell plans apart by identity)."""
        others = {key: self.views[o] for key, o in self.objectives.items()
                  if o != self.default_objective and o in self.views}
        return replace(self.default_view, workload_views=MappingProxyType(others)) if others else self.default_view
