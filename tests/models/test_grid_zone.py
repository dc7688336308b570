"""A node's grid zone: its own label, then the user's map, then the bundled cloud-region map."""

import pytest

from wattwise.models.grid_zone import (GRID_ZONE_LABEL, REGION_LABEL, UNMAPPED_ZONE, ZONE_LABEL, GridZone,
                                       GridZoneSource, resolve_grid_zone)
from wattwise.telemetry.grid_zones import bundled_cloud_regions, load_user_map
from wattwise.models.errors import InvalidInputError

CLOUD = {"eu-central-1": "DE", "westeurope": "NL"}


def test_label_wins_over_every_map():
    labels = {GRID_ZONE_LABEL: "FR", REGION_LABEL: "eu-central-1"}
    assert resolve_grid_zone(labels, {"eu-central-1": "GB"}, CLOUD) == GridZone("FR", GridZoneSource.LABEL)


def test_user_map_by_zone_then_region_before_the_bundled_map():
    labels = {ZONE_LABEL: "eu-central-1a", REGION_LABEL: "eu-central-1"}
    assert resolve_grid_zone(labels, {"eu-central-1a": "AT", "eu-central-1": "GB"}, CLOUD).zone == "AT"
    assert resolve_grid_zone(labels, {"eu-central-1": "GB"}, CLOUD) == GridZone("GB", GridZoneSource.USER_MAP)
    assert resolve_grid_zone(labels, {}, CLOUD) == GridZone("DE", GridZoneSource.CLOUD_REGION)


def test_a_node_nothing_maps_is_unmapped_not_a_made_up_zone():
    for labels in ({}, {REGION_LABEL: "mars-north-1"}, {GRID_ZONE_LABEL: "  "}):
        assert resolve_grid_zone(labels, {}, CLOUD) == GridZone(UNMAPPED_ZONE, GridZoneSource.UNMAPPED)


def test_bundled_map_covers_three_clouds_with_real_zone_keys():
    regions = bundled_cloud_regions()
    assert len(regions) >= 30
    # one region of each provider, checked against the providers' own locations
    assert regions["eu-central-1"] == "DE"          # AWS Frankfurt
    assert regions["europe-west9"] == "FR"          # Google Paris
    assert regions["westeurope"] == "NL"            # Azure Netherlands
    assert regions["northeurope"] == "IE"           # Azure Ireland (the dataset also lists Finland)
    assert regions["us-west-1"] == "US-CAL-CISO"
    assert all(z and z == z.strip() and " " not in z for z in regions.values())


def test_user_map_file(tmp_path):
    good = tmp_path / "zones.yaml"
    good.write_text("eu-central-1: AT\non-prem-rack-3: ' GB '\n")
    assert load_user_map(good) == {"eu-central-1": "AT", "on-prem-rack-3": "GB"}
    bad = tmp_path / "bad.yaml"
    bad.write_text("- DE\n- FR\n")
    with pytest.raises(InvalidInputError, match="must map each zone or region"):
        load_user_map(bad)
    with pytest.raises(InvalidInputError, match="cannot read the grid zone map"):
        load_user_map(tmp_path / "missing.yaml")
