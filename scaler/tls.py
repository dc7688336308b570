"""TLS and mTLS for the scaler's main port, with certificates reloaded when their files change.

`grpc.dynamic_ssl_server_credentials` asks a fetcher for the certificate configuration at each
new handshake; the fetcher returns a new configuration only when a file's modification time or
size changed, so a rotated certificate (cert-manager, a re-mounted Secret) is used for the next
connection without a restart. When a client CA is given, a client certificate signed by it is
required (mTLS): a client without one is refused at the handshake.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import grpc

log = logging.getLogger(__name__)


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


def _stamp(paths) -> tuple:
    out = []
    for p in paths:
        st = os.stat(p)
        out.append((str(p), st.st_mtime_ns, st.st_size))
    return tuple(out)


class ReloadingCredentials:
    """Server credentials whose certificate configuration follows the files."""

    def __init__(self, files: TlsFiles):
        self.files = files
        self._lock = threading.Lock()
        self._stamp = _stamp(files.paths())
        self.reloads = 0
        initial = self._configuration()
        self.credentials = grpc.dynamic_ssl_server_credentials(
            initial, self._fetch, require_client_authentication=files.mutual)

    def _configuration(self):
        f = self.files
        root = f.client_ca.read_bytes() if f.client_ca else None
        return grpc.ssl_server_certificate_configuration([(f.key.read_bytes(), f.cert.read_bytes())],
                                                         root_certificates=root)

    def _fetch(self):
        """Called by gRPC at each handshake: a new configuration, or None to keep the current one."""
        try:
            stamp = _stamp(self.files.paths())
        except OSError as e:
            log.warning("TLS files unreadable (%s); keeping the certificates loaded before", e)
            return None
        with self._lock:
            if stamp == self._stamp:
                return None
            try:
                config = self._configuration()
            except OSError as e:
                log.warning("TLS files changed but could not be read (%s); keeping the old ones", e)
                return None
            self._stamp = stamp
            self.reloads += 1
        log.info("TLS certificates changed on disk; reloaded (%s)", ", ".join(str(p) for p in self.files.paths()))
        return config


def server_credentials(cert: str | None, key: str | None, client_ca: str | None):
    """Credentials for the main port, or None for plaintext. Raises ValueError on bad flags."""
    if not cert and not key:
        if client_ca:
            raise ValueError("--tls-client-ca needs --tls-cert and --tls-key (mTLS is TLS plus client certificates)")
        return None
    if not (cert and key):
        raise ValueError("give both --tls-cert and --tls-key")
    files = TlsFiles(Path(cert), Path(key), Path(client_ca) if client_ca else None)
    for p in files.paths():
        if not p.is_file():
            raise ValueError(f"TLS file not found: {p}")
    return ReloadingCredentials(files)
