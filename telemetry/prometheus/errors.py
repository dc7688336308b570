"""Typed errors of the Prometheus adapter. Each says whether retrying may help and what to do."""

from __future__ import annotations

from wattwise.models.errors import WattWiseError


class TelemetryError(WattWiseError):
    """A telemetry read failed. `retryable` is per instance: a timeout may pass, a bad query never."""

    def __init__(self, message: str, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable


class PrometheusUnavailable(TelemetryError):
    """Prometheus could not be reached (connection refused, DNS, TLS, retries exhausted)."""

    def __init__(self, message: str):
        super().__init__(message, retryable=True)


class PrometheusTimeout(TelemetryError):
    """A query took longer than its timeout (client side or Prometheus's own evaluation timeout)."""

    def __init__(self, message: str):
        super().__init__(message, retryable=True)


class PrometheusPartialAnswer(TelemetryError):
    """Prometheus (or Thanos, Mimir, a remote read) answered with `warnings`: the data holds only
    what could be collected. Read as missing, never as the whole: a sum of FPS over the pods
    answered would under-state demand."""

    def __init__(self, message: str):
        super().__init__(message, retryable=True)


class PrometheusQueryError(TelemetryError):
    """Prometheus answered but refused the query (HTTP 4xx, bad PromQL, too many points)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message, retryable=status is not None and status >= 500)
        self.status = status


class NoKeplerData(TelemetryError):
    """Prometheus is up but holds no Kepler power series in the requested range."""

    def __init__(self, message: str):
        super().__init__(message, retryable=False)


class NoFpsData(TelemetryError):
    """Kepler data is there but the application's FPS metric is not (wrong name or labels)."""

    def __init__(self, message: str):
        super().__init__(message, retryable=False)
