"""TLS for the extender: a server certificate the scheduler verifies with `tlsConfig.caFile`, and
optionally client certificates checked against a CA (kube-scheduler presents
`tlsConfig.certFile`/`keyFile`). TLS 1.2 and 1.3 only.

The certificate, key and client CA are reloaded when their files change (cert-manager renewing
the Secret): each new connection checks the files and uses the latest good set; connections
already open keep theirs; a broken new set is refused with one warning naming the file
(`wattwise.tls_files`)."""

from __future__ import annotations

from pathlib import Path

from wattwise.models.errors import InvalidInputError
from wattwise.tls_files import ReloadingServerContext, TlsFileError, TlsFiles


def server_ssl_context(cert_file: str, key_file: str, client_ca_file: str | None = None) -> ReloadingServerContext:
    """The extender's TLS; `.context` is the `ssl.SSLContext` to serve with. Raises InvalidInputError
    naming the flag when a file is missing or broken at start."""
    files = TlsFiles(Path(cert_file), Path(key_file), Path(client_ca_file) if client_ca_file else None)
    try:
        return ReloadingServerContext(files, "extender")
    except TlsFileError as e:
        if e.path == files.client_ca:
            raise InvalidInputError("--extender-client-ca", f"cannot load the client CA: {e}",
                                    "give the PEM file of the CA that signed kube-scheduler's client certificate") from None
        raise InvalidInputError("--extender-tls-cert/--extender-tls-key", f"cannot load the certificate and key: {e}",
                                "give PEM files of a certificate and its private key") from None
