"""Checks on decoded JSON that turn a surprising shape into a clear, non-retryable error."""

from __future__ import annotations

import math
from typing import Any

from wattwise.telemetry.carbon.errors import CarbonProviderError
from wattwise.telemetry.carbon.timeparse import parse_utc_s


def shape_error(provider: str, problem: str, hint: str = "") -> CarbonProviderError:
    return CarbonProviderError(
        provider, f"unexpected response: {problem}", retryable=False,
        hint=hint or "the provider API may have changed, or base_url points at something else")


def field(provider: str, doc: Any, key: str, where: str) -> Any:
    if not isinstance(doc, dict) or key not in doc:
        raise shape_error(provider, f"{where} has no field {key!r}")
    return doc[key]


def number(provider: str, value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise shape_error(provider, f"{where} is not a number: {value!r}")
    try:
        result = float(value)
    except ValueError:
        raise shape_error(provider, f"{where} is not a number: {value!r}") from None
    if not math.isfinite(result) or result < 0:
        raise shape_error(provider, f"{where} is not a finite non-negative number: {value!r}")
    return result


def timestamp(provider: str, value: Any, where: str) -> float:
    try:
        return parse_utc_s(value)
    except (ValueError, TypeError):
        raise shape_error(provider, f"{where} is not a timestamp: {value!r}") from None


def array(provider: str, value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise shape_error(provider, f"{where} is not a list: {type(value).__name__}")
    return value
