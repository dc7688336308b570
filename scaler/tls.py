"""TLS and mTLS for the scaler's ports, with certificates reloaded when their files change.

The gRPC port: `grpc.dynamic_ssl_server_credentials` asks a fetcher for the certificate
configuration at each new handshake; the fetcher (`wattwise.tls_files.Reloader`) returns a new
configuration only when a file changed and the new set loads and matches (a broken set keeps the
old one, with one warning naming the file), so a rotated certificate (cert-manager, a re-mounted
Secret) is used for the next connection without a restart. gRPC core accepts TLS 1.2 and 1.3 only
(its default minimum, which grpcio does not let us lower; tests/scaler/test_tls_versions.py).
With a client CA, a client certificate signed by it is required (mTLS): a client without one is
refused at the handshake.

The metrics port (`--metrics-tls`): HTTPS from the same files, TLS 1.2+, reloaded the same way.
"""

from __future__ import annotations

import logging
from pathlib import Path

import grpc

from wattwise.models.errors import InvalidInputError
from wattwise.tls_files import Reloader, ReloadingServerContext, TlsFileError, TlsFiles, server_context

log = logging.getLogger(__name__)

__all__ = ["ReloadingCredentials", "TlsFiles", "metrics_tls", "server_credentials"]


def _configuration(files: TlsFiles):
    server_context(files)            # the pair matches and the CA parses, else TlsFileError naming the file
    root = files.client_ca.read_bytes() if files.client_ca else None
    return grpc.ssl_server_certificate_configuration([(files.key.read_bytes(), files.cert.read_bytes())],
                                                     root_certificates=root)


class ReloadingCredentials:
    """Server credentials whose certificate configuration follows the files."""

    def __init__(self, files: TlsFiles):
        self.files = files
        self._reloader = Reloader(files, _configuration, "scaler gRPC port")
        self.credentials = grpc.dynamic_ssl_server_credentials(
            self._reloader.current, self._fetch, require_client_authentication=files.mutual)

    @property
    def reloads(self) -> int:
        return self._reloader.reloads

    def _fetch(self):
        """Called by gRPC at each handshake: a new configuration, or None to keep the current one."""
        try:
            return self._reloader.current if self._reloader.check() else None
        except Exception:  # noqa: BLE001 - never fail a handshake over a check: keep what is loaded
            log.exception("scaler gRPC port: checking the TLS files failed; keeping the certificate loaded before")
            return None


def _files(cert: str | None, key: str | None, client_ca: str | None) -> TlsFiles | None:
    if not cert and not key:
        if client_ca:
            raise InvalidInputError("--tls-client-ca", "needs --tls-cert and --tls-key (mTLS is TLS plus client "
                                    "certificates)")
        return None
    if not (cert and key):
        raise InvalidInputError("--tls-cert/--tls-key", "give both --tls-cert and --tls-key")
    return TlsFiles(Path(cert), Path(key), Path(client_ca) if client_ca else None)


def _flag(files: TlsFiles, e: TlsFileError) -> str:
    return "--tls-client-ca" if e.path == files.client_ca else "--tls-cert/--tls-key"


def server_credentials(cert: str | None, key: str | None, client_ca: str | None) -> ReloadingCredentials | None:
    """Credentials for the main port, or None for plaintext. Raises ValueError on bad flags or files."""
    files = _files(cert, key, client_ca)
    if files is None:
        return None
    try:
        return ReloadingCredentials(files)
    except TlsFileError as e:
        raise InvalidInputError(_flag(files, e), str(e)) from None


METRICS_TLS_MODES = ("off", "tls", "mtls")


def metrics_tls(mode: str, cert: str | None, key: str | None, client_ca: str | None) -> ReloadingServerContext | None:
    """The metrics port's TLS for `--metrics-tls MODE`: None (off: plain HTTP), server TLS from
    --tls-cert/--tls-key (tls), or that plus client certificates signed by --tls-client-ca (mtls)."""
    if mode not in METRICS_TLS_MODES:
        raise InvalidInputError("--metrics-tls", f"{mode!r} is not one of {', '.join(METRICS_TLS_MODES)}")
    if mode == "off":
        return None
    files = _files(cert, key, client_ca)
    if files is None:
        raise InvalidInputError("--metrics-tls", f"{mode} serves the scaler's certificate: give --tls-cert and --tls-key")
    if mode == "mtls" and files.client_ca is None:
        raise InvalidInputError("--metrics-tls", "mtls checks client certificates against --tls-client-ca: give it")
    if mode == "tls":
        files = TlsFiles(files.cert, files.key, None)
    try:
        return ReloadingServerContext(files, "scaler metrics port")
    except TlsFileError as e:
        raise InvalidInputError(_flag(files, e), str(e)) from None
