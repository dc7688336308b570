"""One HTTP GET returning JSON, with every failure mapped to `CarbonProviderError`."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any

import requests

from wattwise.telemetry.carbon.errors import CarbonProviderError

_BODY_EXCERPT_CHARS = 200


def get_json(provider: str, url: str, *, timeout_s: float, params: Mapping[str, Any] | None = None,
             headers: Mapping[str, str] | None = None, auth: tuple[str, str] | None = None,
             auth_hint: str = "check the provider credentials in the carbon settings",
             not_found_hint: str = "check base_url and the zone name",
             no_content_means: str | None = None, session: requests.Session | None = None) -> Any:
    """GET `url` and decode its JSON body.

    `timeout_s` bounds the connection and each wait for data. Raises `CarbonProviderError`:
    retryable for timeouts, connection errors, 429, 5xx and undecodable bodies; not retryable
    for 4xx (bad credentials, unknown zone, bad parameters). HTTP 204 No Content has no body to
    decode: it raises a retryable error saying what the provider means by it (`no_content_means`,
    e.g. "no emissions data for location 'westus'"), never "malformed JSON". `session`: one the
    caller configured (TLS, credentials) and closes; default: a new plain one.
    """
    try:
        with (requests.Session() if session is None else contextlib.nullcontext(session)) as s:
            # verify and cert passed on explicitly: else $REQUESTS_CA_BUNDLE overrides the session's CA file
            response = s.get(url, params=params, headers=dict(headers or {}), auth=auth,
                             timeout=(timeout_s, timeout_s), verify=s.verify, cert=s.cert)
    except requests.Timeout:
        raise CarbonProviderError(provider, f"no answer from {url} within {timeout_s:g} s",
                                  retryable=True, hint="the provider is slow or unreachable") from None
    except requests.RequestException as exc:
        raise CarbonProviderError(provider, f"cannot reach {url}: {type(exc).__name__}",
                                  retryable=True, hint="check base_url and network access") from exc
    if response.status_code >= 400:
        raise http_error(provider, response, auth_hint=auth_hint, not_found_hint=not_found_hint)
    if response.status_code == 204:
        raise CarbonProviderError(
            provider, f"204 No Content from {url}: {no_content_means or 'the provider has no data for this request'}",
            status=204, retryable=True, no_data=True,
            hint="no data yet; the last value (marked stale) or the default is served meanwhile")
    try:
        return response.json()
    except ValueError:
        raise CarbonProviderError(
            provider, f"malformed JSON from {url}: {_excerpt(response.text)!r}",
            status=response.status_code, retryable=True,
            hint="the provider or a proxy answered with something else than JSON") from None


def http_error(provider: str, response: requests.Response, *, auth_hint: str,
               not_found_hint: str) -> CarbonProviderError:
    status = response.status_code
    detail = error_text(response.text)
    problem = f"{response.reason or 'error'} from {response.url.split('?')[0]}"
    if detail:
        problem += f": {detail}"
    if status in (401, 403):
        return CarbonProviderError(provider, problem, status=status, retryable=False, hint=auth_hint)
    if status == 404:
        return CarbonProviderError(provider, problem, status=status, retryable=False, hint=not_found_hint)
    if status == 429:
        retry_after_s = _retry_after_s(response.headers.get("Retry-After"))
        hint = "rate limited: lower the refresh rate (raise ttl_s)"
        if retry_after_s is not None:
            hint += f"; the server asks to wait {retry_after_s:g} s"
        return CarbonProviderError(provider, problem, status=status, retryable=True, hint=hint,
                                   retry_after_s=retry_after_s)
    if status >= 500:
        return CarbonProviderError(provider, problem, status=status, retryable=True,
                                   hint="provider-side failure; it usually passes")
    return CarbonProviderError(provider, problem, status=status, retryable=False,
                               hint="check the request parameters (zone, region, query)")


def error_text(body: str) -> str:
    """The human part of an error body, whatever its shape: {"error": "..."}, {"message": ...},
    {"error": {"code", "message"}}, Prometheus {"errorType", "error"}, .NET problem details
    {"title", "detail"}, FastAPI {"detail": ...}, or plain text."""
    try:
        doc = json.loads(body)
    except ValueError:
        return _excerpt(body)
    if not isinstance(doc, dict):
        return _excerpt(json.dumps(doc))
    parts: list[str] = []
    for key in ("errorType", "title", "error", "message", "detail", "msg"):
        value = doc.get(key)
        if isinstance(value, dict):
            value = value.get("message") or value.get("code") or json.dumps(value)
        elif isinstance(value, list):
            value = json.dumps(value)
        if value and str(value) not in parts:
            parts.append(str(value))
    return _excerpt(": ".join(parts)) if parts else _excerpt(body)


def _retry_after_s(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare for these APIs, and the backoff covers it


def _excerpt(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= _BODY_EXCERPT_CHARS else text[:_BODY_EXCERPT_CHARS] + "..."
