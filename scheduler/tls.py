"""TLS for the extender: a server certificate the scheduler verifies with `tlsConfig.caFile`, and
optionally client certificates checked against a CA (kube-scheduler presents
`tlsConfig.certFile`/`keyFile`)."""

from __future__ import annotations

import ssl

from wattwise.models.errors import InvalidInputError


def server_ssl_context(cert_file: str, key_file: str, client_ca_file: str | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as e:
        raise InvalidInputError("--extender-tls-cert/--extender-tls-key",
                                f"cannot load the certificate and key: {e}",
                                "give PEM files of a certificate and its private key") from None
    if client_ca_file:
        try:
            ctx.load_verify_locations(cafile=client_ca_file)
        except (OSError, ssl.SSLError) as e:
            raise InvalidInputError("--extender-client-ca", f"cannot load the client CA: {e}",
                                    "give the PEM file of the CA that signed kube-scheduler's client certificate") from None
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx
