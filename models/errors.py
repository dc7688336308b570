"""Errors of the decision core. Each says whether retrying helps and what to do next."""

import math


class WattWiseError(Exception):
    """Base class. `retryable` tells a caller whether the same call may succeed later."""

    retryable = False


class InvalidInputError(WattWiseError, ValueError):
    """Input is wrong; retrying the same input never helps. The message names the field."""

    def __init__(self, path: str, problem: str, hint: str = ""):
        self.path = path
        self.problem = problem
        self.hint = hint
        text = f"{path}: {problem}" if path else problem
        if hint:
            text += f" ({hint})"
        super().__init__(text)


class ModelFileError(WattWiseError, ValueError):
    """An energy-model file is malformed or of an unknown version."""


def require_positive(value: float, path: str, hint: str = "", zero_ok: bool = False) -> float:
    """`value` if it is a finite number above zero (or zero, with `zero_ok`), else InvalidInputError
    naming `path`: for numeric flags, where nan, inf or a negative would mean a tight loop or a
    wait that never ends."""
    if isinstance(value, (int, float)) and math.isfinite(value) and (value > 0 or (zero_ok and value == 0)):
        return value
    what = "a number of at least 0" if zero_ok else "a positive number"
    raise InvalidInputError(path, f"{value!r} is not {what}", hint)
