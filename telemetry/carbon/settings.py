"""Validated carbon settings, one model per provider, chosen by the `provider` key."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from wattwise.models.ports import CarbonSignal


class _Common(BaseModel):
    """Keys every provider accepts: how the cache and fallback behave."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ttl_s: float = Field(300.0, ge=0)
    default_g_per_kwh: float = Field(500.0, ge=0)  # conservative: dirtier than most grids
    refresh_timeout_s: float = Field(2.0, gt=0)
    max_stale_s: float = Field(6 * 3600.0, ge=0)
    failure_backoff_s: float = Field(5.0, ge=0)
    background_refresh_s: float | None = Field(None, gt=0)
    zones: tuple[str, ...] = ()


class _Http(_Common):
    timeout_s: float = Field(5.0, gt=0)


class ElectricityMapsSettings(_Http):
    provider: Literal["electricitymaps"]
    auth_token: SecretStr
    base_url: str = "https://api.electricitymap.org"
    with_forecast: bool = True
    emission_factor_type: Literal["lifecycle", "direct"] | None = None


class WattTimeSettings(_Http):
    provider: Literal["watttime"]
    username: str
    password: SecretStr
    base_url: str = "https://api.watttime.org"
    signal_type: Literal["co2_moer", "co2_aoer"] = "co2_moer"
    lookback_s: float = Field(3600.0, gt=0)
    with_forecast: bool = True
    horizon_hours: int | None = Field(None, gt=0)


class UkSettings(_Http):
    provider: Literal["uk"]
    base_url: str = "https://api.carbonintensity.org.uk"
    with_forecast: bool = True


class GsfSettings(_Http):
    provider: Literal["gsf"]
    base_url: str
    signal: CarbonSignal = CarbonSignal.MARGINAL
    lookback_s: float = Field(3600.0, gt=0)
    with_forecast: bool = True


class PrometheusSettings(_Http):
    """The connection keys are those of `wattwise serve`'s --prometheus-* flags (and of
    Prometheus's own HTTP client configuration): this Prometheus may not be --prometheus."""

    provider: Literal["prometheus"]
    base_url: str
    query: str
    zone_label: str = "zone"
    signal: CarbonSignal = CarbonSignal.AVERAGE
    bearer_token: SecretStr | None = None
    bearer_token_file: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    basic_auth_user: str | None = None
    basic_auth_password_file: str | None = None
    headers: dict[str, str] = {}


class StaticSettings(_Common):
    """`g_per_kwh` per zone; other zones get `default_g_per_kwh` with status "default"."""

    provider: Literal["static"]
    g_per_kwh: dict[str, Annotated[float, Field(ge=0)]] = {}
    signal: CarbonSignal = CarbonSignal.AVERAGE
    ttl_s: float = Field(0.0, ge=0)  # a lookup is free; caching would only delay changes


class CsvSettings(_Common):
    """`paths` maps each zone to its trace file."""

    provider: Literal["csv"]
    paths: dict[str, str]
    column: str = "lca"
    signal: CarbonSignal = CarbonSignal.AVERAGE
    forecast_horizon_s: float = Field(0.0, ge=0)
    ttl_s: float = Field(0.0, ge=0)  # the value depends on now_s: never serve another hour's value


CarbonSettings = Annotated[
    Union[ElectricityMapsSettings, WattTimeSettings, UkSettings, GsfSettings, PrometheusSettings,
          StaticSettings, CsvSettings],
    Field(discriminator="provider"),
]

PROVIDERS = ("electricitymaps", "watttime", "uk", "gsf", "prometheus", "static", "csv")
