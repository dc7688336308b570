"""The scaler's carbon-intensity port, chosen by flags: a provider config file, one static value
for every zone, or (neither) the scenario's fixed values.

`--carbon-config FILE` is a YAML or JSON mapping with the keys of
`wattwise.telemetry.carbon.factory.build_carbon_source` (e.g. `provider: electricitymaps`,
`auth_token`, `zones`, `background_refresh_s`); `--carbon-static G` serves G g/kWh in every zone
of the scenario. Both give a `CachedCarbonSource`: it never blocks the refresher for long, and a
reading it could not refresh comes back "stale" or "default", which the refresher plans with and
reports as degraded.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from wattwise.models.ports import CarbonIntensitySource, CarbonReading
from wattwise.models.snapshot import Snapshot
from wattwise.scaler.sources import ScenarioCarbon


def load_carbon_config(path: str | Path) -> Mapping[str, Any]:
    """The mapping in a YAML or JSON file. Raises ValueError saying what is wrong."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ValueError(f"--carbon-config {p}: cannot read it ({e.strerror or e})") from None
    try:
        raw = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise ValueError(f"--carbon-config {p}: not valid {'JSON' if p.suffix.lower() == '.json' else 'YAML'}: "
                         f"{e}") from None
    if not isinstance(raw, Mapping):
        raise ValueError(f"--carbon-config {p}: expected a mapping with a `provider` key, "
                         f"got {type(raw).__name__}")
    return raw


def static_settings(g_per_kwh: float, zones: Iterable[str]) -> dict[str, Any]:
    return {"provider": "static", "g_per_kwh": {zone: g_per_kwh for zone in sorted(set(zones))}}


class NoCarbonProvider:
    """No provider configured (a cluster without --carbon-config or --carbon-static): no zone has a
    reading, so the planner counts every zone at its conservative default, and GET /plan shows
    the zones as missing. Not a degradation: nothing was expected."""

    def intensity(self, zone: str, now_s: float) -> None:
        return None


class EveryZoneStatic:
    """--carbon-static in a cluster: one value for whatever grid zones the nodes turn out to be in."""

    def __init__(self, g_per_kwh: float):
        if not (math.isfinite(g_per_kwh) and g_per_kwh >= 0):
            raise ValueError(f"--carbon-static: must be a finite number >= 0, got {g_per_kwh}")
        self.g_per_kwh = float(g_per_kwh)

    def intensity(self, zone: str, now_s: float) -> CarbonReading:
        return CarbonReading(zone=zone, g_per_kwh=self.g_per_kwh, at_s=float(now_s), source="static")


def carbon_source(snapshot: Snapshot | None, config: str | Path | None = None,
                  static_g_per_kwh: float | None = None) -> CarbonIntensitySource:
    """The port for `wattwise serve`. `snapshot` None: the cluster's nodes decide the zones.
    Raises ValueError or `CarbonSettingsError` (naming the key)."""
    if config is not None and static_g_per_kwh is not None:
        raise ValueError("give --carbon-config or --carbon-static, not both")
    if config is None and static_g_per_kwh is None:
        return ScenarioCarbon(snapshot) if snapshot is not None else NoCarbonProvider()   # type: ignore[return-value]
    from wattwise.telemetry.carbon.factory import build_carbon_source

    if config is not None:
        return build_carbon_source(load_carbon_config(config))
    assert static_g_per_kwh is not None
    if snapshot is None:
        return EveryZoneStatic(static_g_per_kwh)
    return build_carbon_source(static_settings(static_g_per_kwh, (n.zone for n in snapshot.nodes)))


def close(source: CarbonIntensitySource) -> None:
    """Stop a provider's background thread and workers, if it has any."""
    closer = getattr(source, "close", None)
    if callable(closer):
        closer()
