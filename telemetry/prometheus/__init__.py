"""Prometheus adapter: Kepler power, application FPS and kube-state-metrics identity."""

from wattwise.telemetry.prometheus.client import PrometheusClient, Series, plan_chunks
from wattwise.telemetry.prometheus.errors import (NoFpsData, NoKeplerData, PrometheusPartialAnswer, PrometheusQueryError,
                                                  PrometheusTimeout, PrometheusUnavailable, TelemetryError)
from wattwise.telemetry.prometheus.schema import KeplerSchema, detect_schema
from wattwise.telemetry.prometheus.source import PrometheusPowerFpsSource, SourceSettings

__all__ = ["PrometheusClient", "Series", "plan_chunks", "TelemetryError", "PrometheusUnavailable",
           "PrometheusTimeout", "PrometheusPartialAnswer", "PrometheusQueryError", "NoKeplerData", "NoFpsData",
           "KeplerSchema", "detect_schema", "PrometheusPowerFpsSource", "SourceSettings"]
