"""What the scaler answers from: the latest plans, swapped in whole by the refresher.

The core plans with one objective per snapshot, while each ScaledObject may ask for its own
(`objective` key). So the refresher plans every workload once per objective in use, and each
workload reads its replicas from the plan of its own objective. `views[default]` is the plan the
rest of WattWise (the scheduler extender) sees through `PlanSource.current()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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

    @property
    def degraded(self) -> bool:
        return bool(self.degraded_reasons)

    @property
    def default_view(self) -> PlanView:
        return self.views[self.default_objective]

    def view_for(self, objective: Objective | None) -> PlanView:
        return self.views.get(objective or self.default_objective) or self.default_view
