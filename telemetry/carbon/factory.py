"""Build the carbon-intensity port from settings: `{"provider": ..., ...}` -> source."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from wattwise.models.errors import InvalidInputError
from wattwise.models.ports import CarbonIntensitySource
from wattwise.telemetry.carbon.cached import CachedCarbonSource
from wattwise.telemetry.carbon.csv_provider import CsvTraceProvider
from wattwise.telemetry.carbon.electricitymaps import ElectricityMapsProvider
from wattwise.telemetry.carbon.errors import CarbonSettingsError
from wattwise.telemetry.carbon.gsf import CarbonAwareSdkProvider
from wattwise.telemetry.carbon.prometheus import PrometheusCarbonProvider
from wattwise.telemetry.carbon.provider import CarbonProvider
from wattwise.telemetry.carbon.settings import (
    PROVIDERS, CsvSettings, ElectricityMapsSettings, GsfSettings,
    PrometheusSettings, StaticSettings, UkSettings, WattTimeSettings)
from wattwise.telemetry.carbon.static import StaticCarbonProvider
from wattwise.telemetry.carbon.uk import UkCarbonIntensityProvider
from wattwise.telemetry.carbon.watttime import WattTimeProvider
from wattwise.telemetry.prometheus.connection import FLAGS, PrometheusAuth

_MODELS: dict[str, type[BaseModel]] = {
    "electricitymaps": ElectricityMapsSettings, "watttime": WattTimeSettings, "uk": UkSettings,
    "gsf": GsfSettings, "prometheus": PrometheusSettings, "static": StaticSettings,
    "csv": CsvSettings}


def parse_carbon_settings(raw: Mapping[str, Any] | BaseModel, path: str = "carbon") -> BaseModel:
    """Validate raw settings; `CarbonSettingsError` names the bad key (`path` prefixes it)."""
    if isinstance(raw, BaseModel):
        return raw
    if not isinstance(raw, Mapping):
        raise CarbonSettingsError(path, f"expected a mapping, got {type(raw).__name__}")
    provider = raw.get("provider")
    if provider is None:
        raise CarbonSettingsError(f"{path}.provider", "missing", f"one of {', '.join(PROVIDERS)}")
    model = _MODELS.get(provider) if isinstance(provider, str) else None
    if model is None:
        raise CarbonSettingsError(f"{path}.provider", f"unknown provider {provider!r}",
                                  f"one of {', '.join(PROVIDERS)}")
    try:
        return model.model_validate(dict(raw))
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        key = ".".join(str(part) for part in first["loc"])
        problem, hint = first["msg"], ""
        if first["type"] == "extra_forbidden":
            problem = f"unknown key for provider {provider!r}"
            hint = "allowed keys: " + ", ".join(sorted(model.model_fields))
        elif first["type"] == "missing":
            problem = f"missing, required by provider {provider!r}"
        if len(errors) > 1:
            hint = (hint + "; " if hint else "") + f"{len(errors) - 1} more problem(s)"
        raise CarbonSettingsError(f"{path}.{key}", problem, hint) from None


def build_provider(settings: BaseModel) -> CarbonProvider:
    """The raw provider (no cache, may raise) for validated settings."""
    s: Any = settings
    if isinstance(s, ElectricityMapsSettings):
        return ElectricityMapsProvider(s.auth_token.get_secret_value(), base_url=s.base_url,
                                       timeout_s=s.timeout_s, with_forecast=s.with_forecast,
                                       emission_factor_type=s.emission_factor_type)
    if isinstance(s, WattTimeSettings):
        return WattTimeProvider(s.username, s.password.get_secret_value(), base_url=s.base_url,
                                signal_type=s.signal_type, timeout_s=s.timeout_s,
                                lookback_s=s.lookback_s, with_forecast=s.with_forecast,
                                horizon_hours=s.horizon_hours)
    if isinstance(s, UkSettings):
        return UkCarbonIntensityProvider(base_url=s.base_url, timeout_s=s.timeout_s,
                                         with_forecast=s.with_forecast)
    if isinstance(s, GsfSettings):
        return CarbonAwareSdkProvider(s.base_url, signal=s.signal, timeout_s=s.timeout_s,
                                      lookback_s=s.lookback_s, with_forecast=s.with_forecast)
    if isinstance(s, PrometheusSettings):
        return PrometheusCarbonProvider(
            s.base_url, s.query, zone_label=s.zone_label, signal=s.signal, timeout_s=s.timeout_s,
            bearer_token=s.bearer_token.get_secret_value() if s.bearer_token else None,
            auth=prometheus_auth(s))
    if isinstance(s, StaticSettings):
        # unknown zones raise, so the cache serves default_g_per_kwh marked "default"
        return StaticCarbonProvider(s.g_per_kwh, signal=s.signal)
    if isinstance(s, CsvSettings):
        try:
            return CsvTraceProvider.from_files(s.paths, column=s.column, signal=s.signal,
                                               forecast_horizon_s=s.forecast_horizon_s)
        except (OSError, ValueError) as exc:
            raise CarbonSettingsError("carbon.paths", str(exc)) from None
    raise CarbonSettingsError("carbon", f"unsupported settings type {type(s).__name__}")


def prometheus_auth(s: PrometheusSettings, path: str = "carbon") -> PrometheusAuth:
    """The connection keys of a `prometheus` provider as the `PrometheusAuth` every WattWise
    Prometheus client takes, checked as the --prometheus-* flags are (naming the key)."""
    auth = PrometheusAuth(bearer_token_file=s.bearer_token_file, ca_file=s.ca_file, cert_file=s.cert_file,
                          key_file=s.key_file, basic_auth_user=s.basic_auth_user,
                          basic_auth_password_file=s.basic_auth_password_file, headers=tuple(s.headers.items()))
    keys = {f: f"{path}.{f}" for f in FLAGS}
    if s.bearer_token is not None and (auth.bearer_token_file or auth.basic_auth_user):
        other = keys["bearer_token_file"] if auth.bearer_token_file else keys["basic_auth_user"]
        raise CarbonSettingsError(f"{path}.bearer_token", f"given with {other}",
                                  "a request carries one Authorization header: give one of them")
    try:
        auth.check(s.base_url, flags=keys, url_flag=f"{path}.base_url")
    except InvalidInputError as e:
        raise CarbonSettingsError(e.path, e.problem, e.hint) from None
    return auth


def build_carbon_source(raw: Mapping[str, Any] | BaseModel, *,
                        clock: Callable[[], float] = time.time) -> CarbonIntensitySource:
    """Settings -> `CachedCarbonSource` over the chosen provider (it implements the port)."""
    settings: Any = parse_carbon_settings(raw)
    return CachedCarbonSource(
        build_provider(settings), ttl_s=settings.ttl_s, default_g_per_kwh=settings.default_g_per_kwh,
        clock=clock, refresh_timeout_s=settings.refresh_timeout_s, max_stale_s=settings.max_stale_s,
        failure_backoff_s=settings.failure_backoff_s,
        background_interval_s=settings.background_refresh_s, zones=settings.zones)
