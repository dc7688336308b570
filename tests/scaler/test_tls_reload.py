"""The scaler's gRPC port and its metrics port follow their TLS files as mounted from a Secret
(renewal used by the next connection; a broken renewal keeps the old certificate with one
warning naming the file), and refuse clients without a certificate under mTLS."""

from __future__ import annotations

import logging
import socket
import ssl
import urllib.error
import urllib.request

import grpc
import pytest

from tests.scaler.helpers import demo_ref, keda_poll, start_demo
from tests.scheduler.test_tls_reload import SecretMount, der, secret
from tests.scheduler.tls_certs import Certs, make_certs
from wattwise.scaler.metrics import ScalerMetrics
from wattwise.scaler.proto import externalscaler_pb2_grpc as pb_grpc
from wattwise.scaler.tls import metrics_tls, server_credentials


@pytest.fixture(scope="module")
def pkis(tmp_path_factory):
    made = [make_certs(tmp_path_factory.mktemp(name)) for name in ("old", "new")]
    if None in made:
        pytest.skip("openssl is not installed")
    return made


def flags(mount: SecretMount) -> tuple[str, str, str]:
    return str(mount.path("tls.crt")), str(mount.path("tls.key")), str(mount.path("ca.crt"))


def served_cert(port: int, trust: Certs, cert: Certs | None) -> bytes:
    """The certificate the port presents to a TLS client speaking h2 (what gRPC expects)."""
    ctx = ssl.create_default_context(cafile=str(trust.ca))
    ctx.set_alpn_protocols(["h2"])
    if cert is not None:
        ctx.load_cert_chain(str(cert.client_cert), str(cert.client_key))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            return s.getpeercert(binary_form=True)


def keda(port: int, trust: Certs, cert: Certs | None):
    creds = grpc.ssl_channel_credentials(trust.ca.read_bytes(), cert.client_key.read_bytes() if cert else None,
                                         cert.client_cert.read_bytes() if cert else None)
    with grpc.secure_channel(f"localhost:{port}", creds) as channel:
        return keda_poll(pb_grpc.ExternalScalerStub(channel), demo_ref("retail/checkout-cams"), timeout=5)


def test_grpc_port_reloads_a_renewal_and_keeps_the_old_certificate_over_a_broken_one(pkis, tmp_path, caplog):
    old, new = pkis
    mount = SecretMount(tmp_path / "tls", secret(old))
    tls = server_credentials(*flags(mount))
    scaler = start_demo(tls=tls)
    try:
        # WattWise's loggers only: grpc logs an AioServer it is freeing at DEBUG, and a record
        # kept by caplog would free it a second time (a segfault at teardown)
        caplog.set_level(logging.DEBUG, logger="wattwise")
        assert keda(scaler.grpc_port, old, old)[2].result is True
        with pytest.raises(grpc.RpcError) as e:             # mTLS: a client without a certificate is refused
            keda(scaler.grpc_port, old, None)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE

        mount.update(secret(new, key=old.server_key))       # broken: the key is not the certificate's
        for _ in range(3):
            assert served_cert(scaler.grpc_port, old, old) == der(old.server_cert)
        assert keda(scaler.grpc_port, old, old)[2].result is True
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1 and str(mount.path("tls.key")) in warnings[0], warnings
        assert tls.reloads == 0

        mount.update(secret(new))                           # fixed
        assert keda(scaler.grpc_port, new, new)[2].result is True
        assert served_cert(scaler.grpc_port, new, new) == der(new.server_cert)
        assert tls.reloads == 1
        with pytest.raises(grpc.RpcError):                  # the old CA's client certificate: refused now
            keda(scaler.grpc_port, new, old)
        assert "-----BEGIN" not in caplog.text
    finally:
        scaler.stop(1.0)


def get(port: int, ctx: ssl.SSLContext | None, scheme: str = "https") -> int:
    with urllib.request.urlopen(f"{scheme}://localhost:{port}/metrics", timeout=5, context=ctx) as resp:
        assert b"wattwise_degraded" in resp.read()
        return resp.status


def client(trust: Certs, cert: Certs | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(trust.ca))
    if cert is not None:
        ctx.load_cert_chain(str(cert.client_cert), str(cert.client_key))
    return ctx


def test_metrics_port_over_https_asks_no_client_certificate_and_follows_renewals(pkis, tmp_path):
    old, new = pkis
    mount = SecretMount(tmp_path / "tls", secret(old))
    server, _ = ScalerMetrics().serve("127.0.0.1", 0, metrics_tls("tls", *flags(mount)))   # the CA is given, unused
    port = server.server_port
    try:
        assert get(port, client(old)) == 200                # Prometheus' usual set-up: server TLS, no client cert
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            get(port, None, scheme="http")                  # plain HTTP to an HTTPS port
        mount.update(secret(new))
        assert get(port, client(new)) == 200
        with pytest.raises(urllib.error.URLError):
            get(port, client(old))                          # the old certificate is no longer served
    finally:
        server.shutdown()
        server.server_close()


def test_metrics_port_with_mtls_refuses_a_client_without_a_certificate(pkis, tmp_path):
    old, _ = pkis
    mount = SecretMount(tmp_path / "tls", secret(old))
    server, _ = ScalerMetrics().serve("127.0.0.1", 0, metrics_tls("mtls", *flags(mount)))
    port = server.server_port
    try:
        with pytest.raises((urllib.error.URLError, ssl.SSLError, ConnectionError)):
            get(port, client(old))
        assert get(port, client(old, old)) == 200
    finally:
        server.shutdown()
        server.server_close()


def test_metrics_tls_flags_are_explained(pkis, tmp_path):
    old, _ = pkis
    assert metrics_tls("off", None, None, None) is None
    with pytest.raises(ValueError, match="--metrics-tls: tls serves the scaler's certificate: give --tls-cert"):
        metrics_tls("tls", None, None, None)
    with pytest.raises(ValueError, match="--metrics-tls: mtls .* --tls-client-ca"):
        metrics_tls("mtls", str(old.server_cert), str(old.server_key), None)
    with pytest.raises(ValueError, match=r"--tls-cert/--tls-key: .*does not match"):
        server_credentials(str(old.server_cert), str(old.client_key), None)


def h2_hello(port: int, ctx: ssl.SSLContext, session: ssl.SSLSession | None = None):
    """An HTTP/2 preface and SETTINGS on a new TLS connection: (session, resumed, the server answered)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as s:
            s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes.fromhex("000000040000000000"))
            return s.session, s.session_reused, bool(s.recv(100))


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_grpc_port_resumes_no_session_from_before_a_ca_rotation(pkis, tmp_path, version):
    old, new = pkis
    mount = SecretMount(tmp_path / "tls", secret(old))
    scaler = start_demo(tls=server_credentials(*flags(mount)))
    try:
        ctx = ssl.create_default_context(cafile=str(old.ca))
        ctx.load_verify_locations(str(new.ca))        # trusts both servers: only its own certificate is at stake
        ctx.load_cert_chain(str(old.client_cert), str(old.client_key))
        ctx.set_alpn_protocols(["h2"])
        ctx.maximum_version = version
        session, _, answered = h2_hello(scaler.grpc_port, ctx)
        assert answered
        mount.update(secret(new))
        try:
            _, resumed, answered = h2_hello(scaler.grpc_port, ctx, session)
        except (ssl.SSLError, ConnectionError):
            resumed = answered = False
        assert not resumed and not answered
    finally:
        scaler.stop(1.0)
