"""Cost coefficients shared by the planner and the placement scores.

One watt in a zone costs `(1 - s) + s * ci_zone / ci_ref` units, with `s` the objective's carbon
share and `ci_ref` the mean intensity over the cluster's zones: energy and carbon objectives then
share one scale. Each objective keeps the other as a tie-breaker (`EPSILON_ENERGY`,
`EPSILON_CARBON`), far too small to pay for moving a running replica. A forecast, when given, is averaged over the amortisation horizon because a
placement made now keeps drawing power that long.

Carbon that is missing is not free: a zone without a reading counts at the snapshot's
`settings.carbon_default_g_per_kwh` (`models.snapshot.DEFAULT_CARBON_G_PER_KWH`, conservative),
and one whose reading is untrusted ("stale", "default") at no less than that. So the plan never
floods the zone it knows least about, under any objective.
"""

from __future__ import annotations

import math

from wattwise.models.cluster import NodeClass
from wattwise.models.energy import WorkloadClassModel
from wattwise.models.ports import CarbonReading
from wattwise.models.snapshot import Snapshot

EPSILON_ENERGY = 1e-3  # keeps energy a tie-breaker under a pure carbon objective
# keeps carbon a tie-breaker under a pure energy objective: of two placements that cost the same
# watts, the one on the cleaner grid (never enough to pay back a replica's start-up: no moves)
EPSILON_CARBON = 1e-4


def carbon_value_too_old(reading: CarbonReading, now_s: float, max_age_s: float) -> bool:
    """Whether the reading's value (its own time) is older than `max_age_s` at `now_s`: then it
    is not trusted, however freshly it was fetched."""
    return now_s - reading.at_s > max_age_s


def zone_intensity(snapshot: Snapshot, zone: str) -> float:
    """g/kWh the plan counts for `zone`: the reading (averaged with its forecast over the
    amortisation horizon); the default where there is none; never below the default where the
    reading is not trustworthy or its value is too old (`carbon_value_too_old`)."""
    default = snapshot.settings.carbon_default_g_per_kwh
    reading = snapshot.carbon.get(zone)
    if reading is None:
        return default
    horizon_end = snapshot.now_s + snapshot.settings.amortise_s
    points = [v for t, v in reading.forecast if snapshot.now_s <= t <= horizon_end
              and math.isfinite(v) and v >= 0]       # an absurd point would pull a good reading down
    value = (reading.g_per_kwh + sum(points)) / (1 + len(points)) if points else reading.g_per_kwh
    if not (math.isfinite(value) and value >= 0):
        return default                       # an absurd reading is no reading
    trusted = reading.trustworthy and not carbon_value_too_old(reading, snapshot.now_s,
                                                               snapshot.settings.carbon_max_age_s)
    return value if trusted else max(value, default)


class ZoneWeights(dict):
    """Zone -> cost weight of one watt there. A zone not among those weighed (a node that joined
    after the plan, in a zone no reading covers) is weighed as `zone_intensity` counts it, the
    conservative default when there is no reading, against the same reference: never as an
    average zone, so a node nothing is known about never looks cleaner than a known one."""

    def __init__(self, snapshot: Snapshot, ref: float, weights: dict[str, float]):
        super().__init__(weights)
        self._snapshot, self._ref = snapshot, ref

    def __missing__(self, zone: str) -> float:
        return _weight(self._snapshot.objective.carbon_share, zone_intensity(self._snapshot, zone), self._ref)


def _weight(share: float, ci: float, ref: float) -> float:
    return (1 - share) + (share + EPSILON_CARBON) * (ci / ref if ref > 0 else 0.0) + EPSILON_ENERGY


def zone_weights(snapshot: Snapshot, zones) -> ZoneWeights:
    """The cost weight of one watt in each zone (index it: `weights[zone]` weighs any zone)."""
    share = snapshot.objective.carbon_share
    intensities = {z: zone_intensity(snapshot, z) for z in zones}
    known = [v for v in intensities.values() if v > 0]
    ref = sum(known) / len(known) if known else 1.0
    return ZoneWeights(snapshot, ref, {z: _weight(share, ci, ref) for z, ci in intensities.items()})


def startup_energy_j(model: WorkloadClassModel, node_class: NodeClass, confidential: bool) -> float:
    """A new replica boots (a confidential VM, attestation, model decryption) at about full power."""
    seconds = node_class.startup_tee_s if confidential else node_class.startup_s
    return seconds * model.replica_power_w(model.capacity_fps)


def wake_energy_j(node_class: NodeClass) -> float:
    """Energy of bringing a sleeping node back: its stated wake energy, plus idle power drawn for
    `wake_s` while it boots and serves nothing."""
    return node_class.wake_energy_j + node_class.idle_w * node_class.wake_s


def wake_cost_w(node_class: NodeClass, amortise_s: float) -> float:
    """Extra watts of keeping a node on rather than asleep, plus its wake energy amortised."""
    idle_extra = node_class.idle_w - node_class.power.sleep_w
    return idle_extra + (wake_energy_j(node_class) / amortise_s if amortise_s > 0 else 0.0)
