"""Static per-zone carbon intensity."""

import pytest

from wattwise.telemetry.carbon.errors import CarbonProviderError
from wattwise.telemetry.carbon.static import StaticCarbonProvider


def test_known_zone_default_and_unknown():
    static = StaticCarbonProvider({"DE": 380.0}, default_g_per_kwh=450.0)
    assert static.fetch("DE", 10.0).g_per_kwh == 380.0
    fallback = static.fetch("PL", 10.0)
    assert (fallback.g_per_kwh, fallback.status) == (450.0, "default") and "PL" in fallback.error
    with pytest.raises(CarbonProviderError, match="no static value for zone 'PL'"):
        StaticCarbonProvider({"DE": 380.0}).fetch("PL", 10.0)


@pytest.mark.parametrize("values, default", [({"DE": -1.0}, None), ({}, float("nan"))])
def test_bad_values_are_refused(values, default):
    with pytest.raises(ValueError):
        StaticCarbonProvider(values, default_g_per_kwh=default)
