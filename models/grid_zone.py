"""Which electricity grid a node draws from: the zone whose carbon intensity its power is charged at.

In order: the node's own `wattwise.io/grid-zone` label; the user's map (keyed by the node's
`topology.kubernetes.io/zone`, then its `topology.kubernetes.io/region`); the bundled map from
AWS, Azure and Google Cloud regions to Electricity Maps zone keys
(`telemetry/data/cloud_region_grid_zones.csv`, from the Green Software Foundation's real-time
cloud dataset). A node none of them maps is UNMAPPED: it is charged the conservative default
intensity, never treated as clean, and reported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

GRID_ZONE_LABEL = "wattwise.io/grid-zone"
ZONE_LABEL = "topology.kubernetes.io/zone"
REGION_LABEL = "topology.kubernetes.io/region"
UNMAPPED_ZONE = "unmapped"   # the grid zone key of nodes nothing maps; it never has a reading


class GridZoneSource(str, Enum):
    """Where a node's grid zone came from (reported in the plan's inputs)."""
    LABEL = "label"
    USER_MAP = "user-map"
    CLOUD_REGION = "cloud-region"
    UNMAPPED = "unmapped"


@dataclass(frozen=True)
class GridZone:
    zone: str
    source: GridZoneSource


def resolve_grid_zone(labels: Mapping[str, str], user_map: Mapping[str, str] | None = None,
                      cloud_regions: Mapping[str, str] | None = None) -> GridZone:
    """The grid zone of a node with these labels (see the module notes for the order)."""
    own = (labels.get(GRID_ZONE_LABEL) or "").strip()
    if own:
        return GridZone(own, GridZoneSource.LABEL)
    for key in (labels.get(ZONE_LABEL), labels.get(REGION_LABEL)):
        if key and user_map and user_map.get(key):
            return GridZone(user_map[key], GridZoneSource.USER_MAP)
    region = labels.get(REGION_LABEL)
    if region and cloud_regions and cloud_regions.get(region):
        return GridZone(cloud_regions[region], GridZoneSource.CLOUD_REGION)
    return GridZone(UNMAPPED_ZONE, GridZoneSource.UNMAPPED)
