"""TLS 1.2 or newer only on every TLS port: the scaler's gRPC port (gRPC core's own minimum:
grpcio has no setting for it, so this test is what holds it), the extender and the metrics port
refuse a TLS 1.0 or 1.1 handshake and accept TLS 1.2 and 1.3.

A control server that allows TLS 1.0 shows the old-version client really offers it (OpenSSL 3
refuses TLS < 1.2 at its default security level, so the client lowers it to 0)."""

from __future__ import annotations

import socket
import ssl
import threading
import warnings

import pytest

from tests.scaler.helpers import snapshot, start_demo
from tests.scheduler.tls_certs import make_certs
from wattwise.runtime import StaticPlanSource
from wattwise.scaler.metrics import ScalerMetrics
from wattwise.scaler.tls import metrics_tls, server_credentials
from wattwise.scheduler.server import start_extender
from wattwise.scheduler.tls import server_ssl_context

OLD = (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1)
NEW = {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}


def handshake(port: int, version: ssl.TLSVersion) -> str | None:
    """The version agreed by a client offering only `version`, or None if the server refused it."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)     # TLSv1 and TLSv1_1 are deprecated: the point
        ctx.minimum_version = ctx.maximum_version = version
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                return s.version()
    except (ssl.SSLError, ConnectionError):
        return None


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    made = make_certs(tmp_path_factory.mktemp("certs"))
    if made is None:
        pytest.skip("openssl is not installed")
    return made


@pytest.fixture(scope="module")
def old_clients_work(certs):
    """A server allowing TLS 1.0+ agrees each old version with our client, else the test is moot."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.load_cert_chain(certs.server_cert, certs.server_key)
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        for _ in OLD:
            conn, _ = listener.accept()
            try:
                ctx.wrap_socket(conn, server_side=True).close()
            except OSError:
                conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    agreed = [handshake(listener.getsockname()[1], v) for v in OLD]
    listener.close()
    if agreed != ["TLSv1", "TLSv1.1"]:
        pytest.skip(f"this OpenSSL ({ssl.OPENSSL_VERSION}) cannot make a TLS 1.0/1.1 client: got {agreed}")


@pytest.fixture(scope="module")
def ports(certs):
    """port of each TLS door: the scaler's gRPC port, the extender, the metrics port."""
    scaler = start_demo(tls=server_credentials(str(certs.server_cert), str(certs.server_key), None))
    extender = start_extender(StaticPlanSource(snapshot()), "127.0.0.1", 0,
                              tls=server_ssl_context(str(certs.server_cert), str(certs.server_key)))
    metrics, _ = ScalerMetrics().serve("127.0.0.1", 0, metrics_tls("tls", str(certs.server_cert),
                                                                     str(certs.server_key), None))
    yield {"grpc": scaler.grpc_port, "extender": extender.port, "metrics": metrics.server_port}
    metrics.shutdown()
    metrics.server_close()
    extender.stop(2.0)
    scaler.stop(1.0)


@pytest.mark.parametrize("door", ["grpc", "extender", "metrics"])
def test_tls_1_0_and_1_1_are_refused_1_2_and_1_3_accepted(door, ports, old_clients_work):
    port = ports[door]
    for version in OLD:
        assert handshake(port, version) is None, f"{door} agreed {version.name}"
    for version, name in NEW.items():
        assert handshake(port, version) == name, f"{door} refused {name}"
