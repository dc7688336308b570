"""Bundled SPECpower_ssj2008 curves (`telemetry/data/specpower_curves.csv`) as `MeasuredCurve`s.

Text in, curves out: the caller reads the file. Each row is one published result: the whole
server's average power at active idle and at 10% ... 100% load, its total cores, and the CPU
`generation` (the name `power_source.CPU_GENERATIONS` gives the CPU's NFD family and model
numbers). A row with no generation cannot be matched to a node and is skipped. SPECpower measures
no standby power, so the curves' `sleep_w` is 0.
"""

from __future__ import annotations

import csv
import io

from wattwise.models.errors import InvalidInputError
from wattwise.models.power_curve import PowerCurve
from wattwise.models.power_source import MeasuredCurve

LOAD_COLUMNS = tuple(f"load_{p}_w" for p in range(10, 101, 10))
REQUIRED_COLUMNS = ("generation", "cores", "active_idle_w", *LOAD_COLUMNS)


def parse_specpower_curves(text: str, source: str = "specpower_curves.csv") -> tuple[MeasuredCurve, ...]:
    """The curves of a SPECpower curves CSV, in file order. Raises InvalidInputError naming the
    line and column of a value that is missing or not a number."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise InvalidInputError(source, f"missing column(s) {', '.join(missing)}",
                                "regenerate it with scripts/derive_power_curves.py")
    out = []
    for row in reader:
        line = reader.line_num
        generation = (row.get("generation") or "").strip()
        if not generation:
            continue
        cores = int(_number(row, "cores", f"{source}:{line}"))
        idle_w = _number(row, "active_idle_w", f"{source}:{line}")
        loads = [_number(row, c, f"{source}:{line}") for c in LOAD_COLUMNS]
        if cores < 1:
            raise InvalidInputError(f"{source}:{line}.cores", f"must be at least 1, got {cores}")
        out.append(MeasuredCurve(generation, cores, PowerCurve.specpower(idle_w, loads)))
    return tuple(out)


def _number(row: dict, column: str, where: str) -> float:
    value = row.get(column)
    try:
        number = float(str(value))
    except ValueError:
        number = float("nan")
    if value is None or number != number or number in (float("inf"), float("-inf")):
        raise InvalidInputError(f"{where}.{column}", f"not a number: {str(value)[:40]!r}")
    return number
