"""How WattWise's Prometheus clients prove who they are and check whom they talk to: one value,
`PrometheusAuth`, built once from the `--prometheus-*` flags and handed to every client (`wattwise
fit` and the background refit, the ScaledObjects' `query` demand, the per-replica FPS).

KEDA does not forward a TriggerAuthentication to an external scaler, so WattWise brings its own.
The options are those of Prometheus's own HTTP client configuration (`bearer_token_file`,
`tls_config`'s `ca_file`, `cert_file` and `key_file`, `basic_auth`'s `username` and
`password_file`), so what a Prometheus user already has mounted works as it is.

Secrets stay in their files: the bearer token and the basic-auth password are read when a request
needs them and read again when the file changes (a projected ServiceAccount token rotates, a
mounted Secret is updated); CA and client-certificate files are read by each new TLS connection.
No token, password, key or header value ever goes into a log line or an error message: errors
name the flag and the file, `describe()` and `repr()` name files and header names only.
"""

from __future__ import annotations

import argparse
import base64
import logging
import os
import re
import ssl
import threading
from dataclasses import dataclass, field
from typing import Mapping
from urllib.parse import urlsplit

import requests
from requests.auth import AuthBase

from wattwise.models.errors import InvalidInputError
from wattwise.telemetry.prometheus.errors import TelemetryError

log = logging.getLogger(__name__)

# The flag naming each field, for error messages (the fields are the flags without their prefix).
FLAGS = {"bearer_token_file": "--prometheus-bearer-token-file", "ca_file": "--prometheus-ca-file",
         "cert_file": "--prometheus-cert-file", "key_file": "--prometheus-key-file",
         "basic_auth_user": "--prometheus-basic-auth-user",
         "basic_auth_password_file": "--prometheus-basic-auth-password-file", "headers": "--prometheus-header"}

_TOKEN_CHARS = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")   # an HTTP header name (RFC 9110 token)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PRINTABLE_WORD = re.compile(r"^[\x21-\x7e]+$")        # a token: printable ASCII, no space
_HEADER_VALUE = re.compile(r"^[\x20-\x7e]+$")


class CredentialFileError(TelemetryError):
    """A token or password file could not be read when a request needed it (a mount being
    updated, a Secret deleted). Retryable: the next read may find it again."""

    def __init__(self, message: str):
        super().__init__(message, retryable=True)


@dataclass(frozen=True)
class PrometheusAuth:
    """Credentials, TLS trust and extra headers for one Prometheus; all empty: plain requests.

    `headers` are (name, value) pairs; their values may be secrets (an API key), so `repr` shows
    the names only."""

    bearer_token_file: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    basic_auth_user: str | None = None
    basic_auth_password_file: str | None = None
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    def __repr__(self) -> str:
        return f"PrometheusAuth({self.describe()})"

    @property
    def configured(self) -> bool:
        return self != NO_AUTH

    def credentials(self) -> str:
        """The Authorization a request carries, in words, without the secret."""
        if self.bearer_token_file:
            return f"bearer token from {self.bearer_token_file}"
        if self.basic_auth_user:
            return f"basic auth as {self.basic_auth_user!r} (password from {self.basic_auth_password_file})"
        if any(name.lower() == "authorization" for name, _ in self.headers):
            return "the Authorization header of --prometheus-header"
        return "none"

    def describe(self) -> str:
        """What is used, in words, with files and header names but no secret."""
        parts = [self.credentials()] if self.bearer_token_file or self.basic_auth_user else []
        if self.ca_file:
            parts.append(f"CA {self.ca_file}")
        if self.cert_file:
            parts.append(f"client certificate {self.cert_file}")
        if self.headers:
            parts.append("headers " + ", ".join(name for name, _ in self.headers))
        return "; ".join(parts) or "no credentials"

    # -- checked once, before anything starts ------------------------------------------------

    def check(self, url: str | None, flags: Mapping[str, str] = FLAGS, url_flag: str = "--prometheus") -> None:
        """Raise `InvalidInputError` naming the flag (`flags[field]`) if these options cannot work
        with `url`: a file missing or unreadable, a key without its certificate, a token and basic
        auth both, a malformed header, TLS files for an http:// URL, options without a URL, a URL
        holding a password (which every log line and error naming the URL would show)."""
        if url and urlsplit(url).password is not None:
            raise InvalidInputError(url_flag, "the URL holds a user and password (not shown: they would be in every "
                                    "log line naming the URL)", f"give the URL without them, and the user and "
                                    f"password with {flags['basic_auth_user']} and {flags['basic_auth_password_file']}")
        if not self.configured:
            return
        first = next(f for f in FLAGS if getattr(self, f))
        if not url:
            raise InvalidInputError(flags[first], f"given without {url_flag}", f"give {url_flag} URL too")
        if self.cert_file and not self.key_file:
            raise InvalidInputError(flags["cert_file"], f"given without {flags['key_file']}",
                                    "give the client certificate's private key too")
        if self.key_file and not self.cert_file:
            raise InvalidInputError(flags["key_file"], f"given without {flags['cert_file']}",
                                    "give the client certificate the key belongs to")
        if bool(self.basic_auth_user) != bool(self.basic_auth_password_file):
            given, missing = (("basic_auth_user", "basic_auth_password_file") if self.basic_auth_user
                              else ("basic_auth_password_file", "basic_auth_user"))
            raise InvalidInputError(flags[given], f"given without {flags[missing]}",
                                    "basic auth needs the user and the file holding the password")
        if self.bearer_token_file and self.basic_auth_user:
            raise InvalidInputError(flags["bearer_token_file"], f"given with {flags['basic_auth_user']}",
                                    "a request carries one Authorization header: give the token or basic auth")
        if self.basic_auth_user and (":" in self.basic_auth_user or _CONTROL.search(self.basic_auth_user)):
            # not shown: a user who wrote "user:password" here would see the password echoed
            raise InvalidInputError(flags["basic_auth_user"], "contains ':' or a control character",
                                    f"give the user name alone; the password goes in {flags['basic_auth_password_file']}")
        _check_headers(self.headers, flags["headers"],
                       authorization_from=(flags["bearer_token_file"] if self.bearer_token_file else
                                           flags["basic_auth_user"] if self.basic_auth_user else None))
        scheme = urlsplit(url).scheme.lower()
        for f in ("ca_file", "cert_file"):
            if getattr(self, f) and scheme != "https":
                raise InvalidInputError(flags[f], f"{url_flag} is {scheme}://, so no TLS is used",
                                        f"give an https:// {url_flag} URL, or leave {flags[f]} out")
        for f in ("bearer_token_file", "basic_auth_password_file", "ca_file", "cert_file", "key_file"):
            path = getattr(self, f)
            if path:
                _check_readable(path, flags[f])
        if self.bearer_token_file:
            _check_secret(_read_token, self.bearer_token_file, flags["bearer_token_file"])
        if self.basic_auth_password_file:
            _check_secret(_read_password, self.basic_auth_password_file, flags["basic_auth_password_file"])
        if self.ca_file:
            _check_ca(self.ca_file, flags["ca_file"])
        if self.cert_file and self.key_file:
            _check_key_pair(self.cert_file, self.key_file, flags["cert_file"], flags["key_file"])
        if scheme == "http" and (self.bearer_token_file or self.basic_auth_user):
            log.warning("%s is http://: the Prometheus credentials (%s) travel unencrypted; prefer https://",
                        url_flag, self.describe())

    # -- used by each client -----------------------------------------------------------------

    def apply(self, session: requests.Session, flags: Mapping[str, str] = FLAGS) -> requests.Session:
        """Configure `session` with these options: TLS trust and client certificate, the headers,
        and an `auth` that reads the token or password file (again when it changes). Each session
        gets its own reader, so clients on different threads never share one."""
        if self.ca_file:
            session.verify = self.ca_file
        if self.cert_file and self.key_file:
            session.cert = (self.cert_file, self.key_file)
        session.headers.update(dict(self.headers))
        if self.bearer_token_file:
            session.auth = _BearerTokenFile(self.bearer_token_file, flags["bearer_token_file"])
        elif self.basic_auth_user and self.basic_auth_password_file:
            session.auth = _BasicAuthPasswordFile(self.basic_auth_user, self.basic_auth_password_file,
                                                  flags["basic_auth_password_file"])
        return session


NO_AUTH = PrometheusAuth()


# -- the command line ------------------------------------------------------------------------

def add_arguments(group: argparse._ActionsContainer) -> None:
    """The `--prometheus-*` client options, for `wattwise serve` and `wattwise fit` alike."""
    group.add_argument("--prometheus-bearer-token-file", metavar="FILE",
                       help="send 'Authorization: Bearer <token>' with the token in FILE, read again when FILE "
                            "changes (e.g. a projected ServiceAccount token for kube-rbac-proxy or a managed "
                            "Prometheus)")
    group.add_argument("--prometheus-ca-file", metavar="FILE",
                       help="PEM CA certificates that sign Prometheus's serving certificate (https:// URL; "
                            "default: the system's CAs)")
    group.add_argument("--prometheus-cert-file", metavar="FILE",
                       help="PEM client certificate for Prometheus's mutual TLS (with --prometheus-key-file)")
    group.add_argument("--prometheus-key-file", metavar="FILE",
                       help="PEM private key of --prometheus-cert-file (unencrypted, as in a Kubernetes TLS Secret)")
    group.add_argument("--prometheus-basic-auth-user", metavar="NAME",
                       help="HTTP basic auth user (with --prometheus-basic-auth-password-file), as Prometheus's "
                            "own basic_auth: username")
    group.add_argument("--prometheus-basic-auth-password-file", metavar="FILE",
                       help="file holding the basic auth password (e.g. a Secret's key mounted as a file), read "
                            "again when it changes")
    group.add_argument("--prometheus-header", metavar="'NAME: VALUE'", action="append",
                       help="an extra HTTP header on every Prometheus request, e.g. 'X-Scope-OrgID: team-a' "
                            "(repeatable; values are never logged)")


def from_args(args: argparse.Namespace) -> PrometheusAuth:
    """The options the flags give, checked against `args.prometheus` (raises `InvalidInputError`)."""
    auth = PrometheusAuth(
        bearer_token_file=args.prometheus_bearer_token_file or None, ca_file=args.prometheus_ca_file or None,
        cert_file=args.prometheus_cert_file or None, key_file=args.prometheus_key_file or None,
        basic_auth_user=args.prometheus_basic_auth_user or None,
        basic_auth_password_file=args.prometheus_basic_auth_password_file or None,
        headers=parse_headers(args.prometheus_header or ()))
    auth.check(args.prometheus)
    return auth


def parse_headers(given: list[str] | tuple[str, ...], flag: str = FLAGS["headers"]) -> tuple[tuple[str, str], ...]:
    """'Name: value' strings -> (name, value) pairs. A malformed one is named by its position
    and its name only: the value, or a string without ':', may be a secret."""
    out = []
    for i, text in enumerate(given, 1):
        name, colon, value = text.partition(":")
        which = f"the {_ordinal(i)} one" if len(given) > 1 else "it"
        if not colon:
            raise InvalidInputError(flag, f"{which} has no ':' (not shown: it may hold a secret)",
                                    "give 'Name: value', e.g. 'X-Scope-OrgID: team-a'")
        out.append((name.strip(), value.strip()))
    return tuple(out)


def _check_headers(headers: tuple[tuple[str, str], ...], flag: str, authorization_from: str | None) -> None:
    seen: set[str] = set()
    for i, (name, value) in enumerate(headers, 1):
        which = f"the {_ordinal(i)} one" if len(headers) > 1 else "it"
        if not _TOKEN_CHARS.match(name):
            raise InvalidInputError(flag, f"{which} has no valid header name before ':'",
                                    "give 'Name: value' with a name of letters, digits and '-'")
        if not value:
            raise InvalidInputError(flag, f"{name!r} has an empty value", "give 'Name: value'")
        if not _HEADER_VALUE.match(value):
            raise InvalidInputError(flag, f"the value of {name!r} holds a line break, a control character or "
                                    "a non-ASCII character", "give the value on one line, in ASCII")
        if name.lower() in seen:
            raise InvalidInputError(flag, f"{name!r} is given twice", "give each header once")
        seen.add(name.lower())
        if name.lower() == "authorization" and authorization_from:
            raise InvalidInputError(flag, f"'Authorization' is also set by {authorization_from}",
                                    "give one of them")


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _check_readable(path: str, flag: str) -> None:
    if not os.path.exists(path):
        raise InvalidInputError(flag, f"no such file: {path}", "check the path and the volume mount")
    if os.path.isdir(path):
        raise InvalidInputError(flag, f"{path} is a directory", "give the file itself")
    try:
        with open(path, "rb"):
            pass
    except OSError as e:
        raise InvalidInputError(flag, f"cannot read {path} ({e.strerror})",
                                "check the file's permissions for WattWise's user") from None


def _check_ca(path: str, flag: str) -> None:
    try:
        ssl.create_default_context(cafile=path)
    except (ssl.SSLError, ValueError):
        raise InvalidInputError(flag, f"{path} holds no PEM CA certificate",
                                "give the PEM file of the CA that signed Prometheus's certificate") from None


def _check_key_pair(cert: str, key: str, cert_flag: str, key_flag: str) -> None:
    asked = []

    def no_password() -> bytes:        # never prompt on a terminal for an encrypted key
        asked.append(True)
        return b""

    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(cert, key, password=no_password)
    except ssl.SSLError as e:
        if asked:
            raise InvalidInputError(key_flag, f"{key} is encrypted", "give an unencrypted PEM key") from None
        if "KEY_VALUES_MISMATCH" in str(e):
            raise InvalidInputError(key_flag, f"{key} is not the key of {cert}",
                                    f"give the key that belongs to {cert_flag}") from None
        raise InvalidInputError(f"{cert_flag}/{key_flag}", f"cannot load {cert} and {key}",
                                "give a PEM certificate and its PEM private key") from None


# -- reading secrets -------------------------------------------------------------------------

class _Unusable(Exception):
    """A secret file cannot be used: `problem` and `hint` name the file, never its content."""

    def __init__(self, problem: str, hint: str):
        super().__init__(problem)
        self.problem, self.hint = problem, hint


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except UnicodeDecodeError:
        raise _Unusable(f"{path} is not UTF-8 text", "give the secret as text") from None
    except OSError as e:
        raise _Unusable(f"cannot read {path} ({e.strerror})", "check the file and its volume mount") from None


def _read_token(path: str) -> str:
    token = _read(path).strip()
    if not token:
        raise _Unusable(f"{path} is empty", "the file should hold the token")
    if not _PRINTABLE_WORD.match(token):
        raise _Unusable(f"{path} does not hold one token (it has spaces, line breaks or other characters a "
                        "token cannot have)", "the file should hold the token alone")
    return token


def _read_password(path: str) -> str:
    password = _read(path).rstrip("\r\n")
    if not password:
        raise _Unusable(f"{path} is empty", "the file should hold the password")
    if _CONTROL.search(password):
        raise _Unusable(f"{path} holds a line break or control character inside the password",
                        "the file should hold the password alone")
    return password


def _check_secret(read, path: str, flag: str) -> None:
    try:
        read(path)
    except _Unusable as e:
        raise InvalidInputError(flag, e.problem, e.hint) from None


class _FileSecret:
    """The content of a secret file, read again when the file changes. A Kubernetes volume swaps
    a directory symlink, so the file's identity (device, inode) changes as well as its time."""

    def __init__(self, path: str, flag: str, read):
        self.path, self.flag, self._read = path, flag, read
        self._lock = threading.Lock()
        self._seen: tuple | None = None
        self._value = ""

    def value(self) -> str:
        try:
            st = os.stat(self.path)
        except OSError as e:
            raise CredentialFileError(f"{self.flag}: cannot read {self.path} ({e.strerror}) "
                                      "(check the file and its volume mount)") from None
        seen = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        with self._lock:
            if seen != self._seen:
                try:
                    self._value = self._read(self.path)
                except _Unusable as e:
                    raise CredentialFileError(f"{self.flag}: {e.problem} ({e.hint})") from None
                self._seen = seen
                log.debug("read %s %s", self.flag, self.path)
            return self._value


class _BearerTokenFile(AuthBase):
    def __init__(self, path: str, flag: str):
        self._token = _FileSecret(path, flag, _read_token)

    def __call__(self, r):
        r.headers["Authorization"] = f"Bearer {self._token.value()}"
        return r


class _BasicAuthPasswordFile(AuthBase):
    def __init__(self, user: str, path: str, flag: str):
        self._user = user
        self._password = _FileSecret(path, flag, _read_password)

    def __call__(self, r):
        pair = f"{self._user}:{self._password.value()}".encode("utf-8")
        r.headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        return r
