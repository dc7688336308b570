"""Errors of the decision core. Each says whether retrying helps and what to do next."""


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
