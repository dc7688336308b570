"""A fixed carbon intensity per zone, e.g. a yearly average, for tests and air-gapped clusters."""

from __future__ import annotations

import math
from collections.abc import Mapping

from wattwise.models.ports import CarbonReading, CarbonStatus
from wattwise.telemetry.carbon.errors import CarbonProviderError
from wattwise.telemetry.carbon.provider import check_signal


class StaticCarbonProvider:
    """Serves `g_per_kwh_by_zone[zone]` (status "fresh"); an unknown zone gets
    `default_g_per_kwh` with status "default", or raises when there is no default."""

    name = "static"

    def __init__(self, g_per_kwh_by_zone: Mapping[str, float] | None = None, *,
                 default_g_per_kwh: float | None = None, signal: str = "average"):
        values = dict(g_per_kwh_by_zone or {})
        for zone, value in [*values.items(), ("default", default_g_per_kwh)]:
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ValueError(f"static g_per_kwh for {zone!r} must be finite and >= 0, got {value!r}")
        self.g_per_kwh_by_zone = values
        self.default_g_per_kwh = default_g_per_kwh
        self.signal = check_signal(signal)

    def __repr__(self) -> str:
        return f"StaticCarbonProvider(zones={sorted(self.g_per_kwh_by_zone)})"

    def fetch(self, zone: str, now_s: float) -> CarbonReading:
        if zone in self.g_per_kwh_by_zone:
            return CarbonReading(zone=zone, g_per_kwh=float(self.g_per_kwh_by_zone[zone]), at_s=float(now_s),
                                 source=self.name, signal=self.signal)
        if self.default_g_per_kwh is not None:
            return CarbonReading(zone=zone, g_per_kwh=float(self.default_g_per_kwh), at_s=float(now_s),
                                 source=self.name, signal=self.signal, status=CarbonStatus.DEFAULT,
                                 error=f"no static value for zone {zone!r}")
        raise CarbonProviderError(self.name, f"no static value for zone {zone!r}", retryable=False,
                                  hint="add the zone to the static values or set a default")
