"""Server TLS from files that change, shared by the scaler's ports and the extender.

cert-manager renews a certificate by rewriting its Secret; the kubelet then swaps the mounted
files at once (a new `..data` directory behind the symlinks). Each new connection stats the files
(following the symlinks: a few microseconds); when one changed, the certificate, key and client
CA are loaded again and checked (the key must match the certificate) and the next connections use
them. Connections already open keep theirs, so nothing in flight is dropped. A broken new set is
refused with one warning naming the file, and the set loaded before stays in use. No certificate
or key content is ever logged: only paths and OpenSSL's reason codes.

Every context here accepts TLS 1.2 and 1.3 only; with a client CA, a client certificate signed by
it is required (mTLS).
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Generic, TypeVar
from wattwise.models.errors import InvalidInputError

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path
    client_ca: Path | None = None

    @property
    def mutual(self) -> bool:
        return self.client_ca is not None

    def paths(self) -> tuple[Path, ...]:
        return (self.cert, self.key) + ((self.client_ca,) if self.client_ca else ())


class TlsFileError(ValueError):
    """A TLS file that cannot be used; `path` names it, the message never quotes its content."""

    def __init__(self, path: Path, problem: str):
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def _encrypted_key() -> bytes:
    # Called by OpenSSL only for an encrypted key: refuse rather than prompt on a terminal.
    raise ValueError("encrypted")


def server_context(files: TlsFiles) -> ssl.SSLContext:
    """A server context from the files as they are now. Raises TlsFileError naming the bad file."""
    for p in files.paths():
        if not p.is_file():
            raise TlsFileError(p, "file not found")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(files.cert, files.key, password=_encrypted_key)
    except ValueError:
        raise TlsFileError(files.key, "the private key is encrypted; give it unencrypted") from None
    except OSError as e:
        raise _which_failed(files, e) from None
    if files.client_ca is not None:
        try:
            ctx.load_verify_locations(cafile=files.client_ca)
        except OSError as e:
            raise TlsFileError(files.client_ca, f"not a PEM CA certificate ({_reason(e)})") from None
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def _reason(e: OSError) -> str:
    return getattr(e, "reason", None) or e.strerror or type(e).__name__


def _which_failed(files: TlsFiles, e: OSError) -> TlsFileError:
    if getattr(e, "reason", None) == "KEY_VALUES_MISMATCH":
        return TlsFileError(files.key, f"the private key does not match the certificate {files.cert}")
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        probe.load_verify_locations(cafile=files.cert)   # parses the certificate alone
    except OSError:
        return TlsFileError(files.cert, f"not a PEM certificate ({_reason(e)})")
    return TlsFileError(files.key, f"not a PEM private key ({_reason(e)})")


Stamp = tuple[tuple[str, object], ...]


def stamp(files: TlsFiles) -> Stamp:
    """What changes when a file is rewritten or swapped: device, inode, mtime and size of the file
    each path resolves to (or the error, if it cannot be read)."""
    out: list[tuple[str, object]] = []
    for p in files.paths():
        try:
            st = os.stat(p)
            out.append((str(p), (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)))
        except OSError as e:
            out.append((str(p), e.errno))
    return tuple(out)


class Reloader(Generic[T]):
    """The latest good value built from the files (`build`), rebuilt by `check()` when they change."""

    def __init__(self, files: TlsFiles, build: Callable[[TlsFiles], T], what: str):
        self.files = files
        self.what = what
        self._build = build
        self._lock = threading.Lock()
        self._stamp = stamp(files)
        self.current: T = build(files)      # TlsFileError at start: the caller names the flag
        self._refused: Stamp | None = None
        self.reloads = 0

    def check(self) -> bool:
        """Load the files again if they changed since the last load; True when a new value is in use."""
        now = stamp(self.files)
        if now == self._stamp or now == self._refused:
            return False
        with self._lock:
            if now != stamp(self.files) or now == self._stamp:    # changing right now, or done by another thread
                return False
            try:
                value = self._build(self.files)
            except TlsFileError as e:
                if stamp(self.files) == now:                      # not half-way through a swap: really broken
                    self._refused = now
                    # the text, not `e`: a log record kept by a handler keeps no traceback (and no
                    # gRPC objects in its frames) alive
                    log.warning("%s: new TLS files refused, %s; still serving the certificate loaded before",
                                self.what, str(e))
                return False
            if stamp(self.files) != now:                          # changed while read: load again next time
                return False
            self.current = value
            self._stamp = now
            self._refused = None
            self.reloads += 1
        log.info("%s: TLS files changed; reloaded %s", self.what, ", ".join(str(p) for p in self.files.paths()))
        return True


class ReloadingServerContext:
    """TLS for a server (`.context`, what the server is given) whose certificate, key and client
    CA follow the files: each new connection checks them and is made by the latest good context.

    Each load is a whole new `ssl.SSLContext`, its session cache and ticket keys included, so a
    TLS session from before a reload is never resumed after it (a resumed session skips the
    client certificate check: a client the new CA does not trust cannot slip in on an old one)."""

    def __init__(self, files: TlsFiles, what: str):
        self.files = files
        self._reloader = Reloader(files, server_context, what)
        self.context = _LatestContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.latest = self.latest
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2    # what the contexts it hands over say
        if files.mutual:
            self.context.verify_mode = ssl.CERT_REQUIRED

    @property
    def reloads(self) -> int:
        return self._reloader.reloads

    def latest(self) -> ssl.SSLContext:
        """The context for a new connection, after checking the files."""
        try:
            self._reloader.check()
        except Exception:  # noqa: BLE001 - a failed check must not fail the connection: keep the current files
            log.exception("%s: checking the TLS files failed; keeping the certificate loaded before",
                          self._reloader.what)
        return self._reloader.current


class _LatestContext(ssl.SSLContext):
    """An `ssl.SSLContext` whose every connection (asyncio's `wrap_bio`, a socket server's
    `wrap_socket`) is made by the context `latest()` returns."""

    latest: Callable[[], ssl.SSLContext]

    def wrap_bio(self, *args, **kwargs):
        return self.latest().wrap_bio(*args, **kwargs)

    def wrap_socket(self, *args, **kwargs):
        return self.latest().wrap_socket(*args, **kwargs)


def client_context(ca: tuple[str, str | None], cert: tuple[str, str | None], key: tuple[str, str | None]) -> ssl.SSLContext:
    """A client's TLS 1.2+ context from PEM files, each given as (flag, path or None); one line
    naming the flag when a file cannot be read or is not what it should be. The command-line
    clients (`explain`, `scaler-call`) check their files with it before dialling."""
    for flag, path in (ca, cert, key):
        if path is not None:
            try:
                with open(path, "rb"):
                    pass
            except OSError as e:
                raise InvalidInputError(flag, f"cannot read {path}: {e.strerror}") from None
    context = _loaded(ca[0], ca[1], lambda: ssl.create_default_context(cafile=ca[1]), "a PEM CA certificate")
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert[1]:
        _loaded(f"{cert[0]}/{key[0]}", f"{cert[1]} and {key[1]}", lambda: context.load_cert_chain(cert[1], key[1]),
                "a PEM certificate and its private key")
    return context


def _loaded(flag: str, what: str | None, load, kind: str):
    try:
        return load()
    except ssl.SSLError as e:
        raise InvalidInputError(flag, f"{what}: not {kind} ({e.reason or e})") from None
