"""Capacity learned from drops, kept between refreshes: what a plan loop holds of each correction.

Each refresh, the replicas' samples (a `models.ports.ReplicaFpsSource`) go through the core's rule,
`models.capacity_correction.lowered_capacities`, against the capacity each (workload, node class)
pair is planned with now (its model's, or the correction held for it). A pair's correction is kept:
- until that pair's own model changes (its capacity is not the `model_capacity_fps` the correction
  was made against: the refit that replaced it read the same drops, so its capacity stands on its
  own). Models of other pairs changing (a refit accepting another pair, a node curve moving, a
  ConfigMap edit: a new `ModelSet.version`) leave it alone, or the pair would go back to a
  capacity it was seen not to reach, lose replicas, and drop frames until corrected again; or
- for `expiry_s` (24 h, the refitter's window) after it was made or last lowered, when no refit
  replaced the model: the capacity then returns to the model's, and drops, if any, lower it again;
- while it is still below the model's capacity (a model that became slower makes it moot).
It is only ever lowered: a held pair is corrected again only from a lower bound, and not within
`settle_s` (120 s) of its last correction, while the replicas' 60 s gauges still show the load of
before the re-plan. A refresh without samples (the source failed) lowers nothing and keeps what is
held. All times are the plan loop's plan times (seconds of the injected clock).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from wattwise.models.capacity_correction import CapacityCorrection, CorrectionSettings, ReplicaRate, lowered_capacities
from wattwise.models.ports import ReplicaSample

log = logging.getLogger(__name__)

Pair = tuple[str, str]


@dataclass(frozen=True)
class KeepSettings:
    rule: CorrectionSettings = CorrectionSettings()
    expiry_s: float = 24 * 3600.0
    settle_s: float = 120.0


@dataclass(frozen=True)
class HeldCorrection:
    correction: CapacityCorrection   # its capacity_fps is the one planned with
    since_s: float                   # plan time it was made or last lowered
    model_capacity_fps: float        # the pair's model's own capacity, before any correction

    @property
    def capacity_fps(self) -> float:
        return self.correction.capacity_fps


class CapacityCorrections:
    """The corrections the refresher holds (its thread only)."""

    def __init__(self, settings: KeepSettings = KeepSettings()):
        self.settings = settings
        self._held: dict[Pair, HeldCorrection] = {}

    def held(self) -> Mapping[Pair, HeldCorrection]:
        return dict(self._held)

    def update(self, now_s: float, model_capacity_fps: Mapping[Pair, float],
               replicas: Iterable[ReplicaRate]) -> dict[Pair, HeldCorrection]:
        """The corrections to plan with now. `model_capacity_fps`: per pair of the plan, its model's
        capacity (uncorrected); `replicas`: this refresh's samples (none when the source failed)."""
        s = self.settings
        for pair, held in list(self._held.items()):
            model_fps = model_capacity_fps.get(pair)
            if model_fps is not None and not math.isclose(model_fps, held.model_capacity_fps, rel_tol=1e-9):
                log.info("energy model of %s on %s changed (capacity %.1f fps, was %.1f): its capacity correction "
                         "cleared", *pair, model_fps, held.model_capacity_fps)
                del self._held[pair]
            elif now_s - held.since_s >= s.expiry_s:
                log.info("capacity correction of %s on %s expired after %g s: back to the model's %.1f fps",
                         *pair, s.expiry_s, held.model_capacity_fps)
                del self._held[pair]
            elif pair in model_capacity_fps and not held.capacity_fps < model_capacity_fps[pair]:
                del self._held[pair]     # the model is no faster than the correction: nothing to correct
        planned = {pair: min(cap, self._held[pair].capacity_fps) if pair in self._held else cap
                   for pair, cap in model_capacity_fps.items()}
        for pair, c in lowered_capacities(planned, replicas, s.rule).items():
            last = self._held.get(pair)
            if last is not None and now_s - last.since_s < s.settle_s:
                continue
            log.info("%s", c.reason)
            self._held[pair] = HeldCorrection(c, now_s, model_capacity_fps[pair])
        return dict(self._held)


def replica_rates(samples: Iterable[ReplicaSample], node_class_of: Mapping[str, str]) -> list[ReplicaRate]:
    """The samples as the core's `ReplicaRate`s, each on its node's class (unknown nodes left out)."""
    out = []
    for x in samples:
        cls = x.node_class or node_class_of.get(x.node)
        if cls is not None:
            out.append(ReplicaRate(x.workload, cls, x.delivered_fps, x.drop_fps, x.requested_fps))
    return out
