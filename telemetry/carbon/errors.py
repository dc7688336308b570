"""The one error type every carbon provider raises, and the settings error of the factory."""

from __future__ import annotations

from wattwise.models.errors import InvalidInputError, WattWiseError


class CarbonProviderError(WattWiseError):
    """A carbon-intensity provider could not give a value.

    `retryable` says whether the same request may succeed later (timeouts, 429, 5xx) or not
    (bad credentials, unknown zone, unexpected response shape). `status` is the HTTP status when
    there was one; `retry_after_s` is the server's Retry-After when it sent one. `no_data` marks
    the provider's documented "nothing for this zone and time yet" answer (Electricity Maps'
    null `carbonIntensity`, the carbon-aware SDK's 204): retryable, and not a fault to chase.
    The message names the provider, the HTTP status and what the operator should do.
    """

    def __init__(self, provider: str, problem: str, *, retryable: bool, status: int | None = None,
                 hint: str = "", retry_after_s: float | None = None, no_data: bool = False):
        self.provider = provider
        self.no_data = no_data
        self.problem = problem
        self.retryable = retryable
        self.status = status
        self.hint = hint
        self.retry_after_s = retry_after_s
        where = f"{provider}: HTTP {status}: " if status is not None else f"{provider}: "
        text = where + problem
        if hint:
            text += f"; {hint}"
        text += " (retryable)" if retryable else " (not retryable)"
        super().__init__(text)


class CarbonSettingsError(InvalidInputError):
    """Carbon settings are wrong; the message names the bad key."""
