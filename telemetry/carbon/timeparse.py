"""Timestamps as providers send them (ISO 8601 strings, epoch numbers) to UTC epoch seconds."""

from __future__ import annotations

from datetime import datetime, timezone


def parse_utc_s(value: object) -> float:
    """ISO 8601 text ("2024-11-28T15:00:00.000Z", "2020-05-24T20:30Z", with an offset or naive,
    naive meaning UTC) or an epoch number to epoch seconds. Raises ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"not a timestamp: {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"not a timestamp: {value!r}")
    parsed = datetime.fromisoformat(value.strip())
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def format_utc(at_s: float, *, minutes_only: bool = False) -> str:
    """Epoch seconds to "2024-01-01T10:00:00Z" (or "2024-01-01T10:00Z")."""
    moment = datetime.fromtimestamp(at_s, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%MZ" if minutes_only else "%Y-%m-%dT%H:%M:%SZ")
