"""The maps `models.grid_zone.resolve_grid_zone` reads: the bundled cloud-region table and a
user's own map (YAML: `{zone-or-region: grid-zone}`)."""

from __future__ import annotations

import csv
from functools import cache
from importlib.resources import files
from pathlib import Path

import yaml

from wattwise.models.errors import InvalidInputError

BUNDLED_TABLE = "cloud_region_grid_zones.csv"


@cache
def bundled_cloud_regions() -> dict[str, str]:
    """AWS, Azure and Google Cloud region -> Electricity Maps zone key (package data; sources in
    data/SOURCES.md). Region names do not collide across the three providers."""
    text = files("wattwise.telemetry").joinpath("data", BUNDLED_TABLE).read_text(encoding="utf-8")
    return {row["region"]: row["grid_zone"] for row in csv.DictReader(text.splitlines())}


def load_user_map(path: str | Path) -> dict[str, str]:
    """A user's map of `topology.kubernetes.io/zone` or `/region` values to grid zone keys."""
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise InvalidInputError(str(path), f"cannot read the grid zone map ({e.strerror}); "
                                           "give a YAML file mapping zones or regions to grid zones") from None
    except yaml.YAMLError as e:
        raise InvalidInputError(str(path), f"not valid YAML: {str(e).splitlines()[0]}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict) or not all(isinstance(k, str) and isinstance(v, str) and v.strip()
                                            for k, v in doc.items()):
        raise InvalidInputError(str(path), "must map each zone or region name to a grid zone key "
                                           "(e.g. `eu-central-1: DE`)")
    return {k: v.strip() for k, v in doc.items()}


@cache
def bundled_measured_curves() -> tuple:
    """The bundled SPECpower curves with their CPU generation (package data; see data/SOURCES.md)."""
    from wattwise.models.specpower import parse_specpower_curves

    text = files("wattwise.telemetry").joinpath("data", "specpower_curves.csv").read_text(encoding="utf-8")
    return parse_specpower_curves(text, "specpower_curves.csv")
