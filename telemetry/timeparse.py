"""Durations ("15s", "7d", "1h30m") and instants (Unix seconds or ISO 8601) for the command line."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from wattwise.models.errors import InvalidInputError

_UNITS_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration_s(text: str, what: str = "duration") -> float:
    text = (text or "").strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = _PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise InvalidInputError(what, f"{text!r} is not a duration", "use e.g. 15s, 5m, 7d or 1h30m")
    return sum(float(n) * _UNITS_S[u] for n, u in parts)


def parse_instant_s(text: str, what: str = "time") -> float:
    text = (text or "").strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInputError(what, f"{text!r} is not a time", "use Unix seconds or ISO 8601, e.g. 2024-05-01T00:00:00Z") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()
