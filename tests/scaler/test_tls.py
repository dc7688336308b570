"""TLS and mTLS on the main port (health stays plaintext), and certificate reload on file change."""

from __future__ import annotations

import shutil

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.scaler.certs import make_pki
from tests.scaler.helpers import demo_ref, keda_poll, start_demo
from wattwise.scaler.proto import externalscaler_pb2_grpc as pb_grpc
from wattwise.scaler.tls import server_credentials


def _secure_stub(port, ca, cert=None, key=None):
    creds = grpc.ssl_channel_credentials(ca.read_bytes(), key.read_bytes() if key else None,
                                         cert.read_bytes() if cert else None)
    channel = grpc.secure_channel(f"localhost:{port}", creds)
    return channel, pb_grpc.ExternalScalerStub(channel)


def _health(port):
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        return health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status


def test_tls_serves_and_plaintext_health_port_answers(tmp_path):
    pki = make_pki(tmp_path / "pki")
    scaler = start_demo(tls=server_credentials(str(pki.server_cert), str(pki.server_key), None))
    try:
        channel, stub = _secure_stub(scaler.grpc_port, pki.ca_cert)
        _, metrics, _ = keda_poll(stub, demo_ref("retail/checkout-cams"))
        assert metrics.metricValues[0].metricValueFloat > 0
        channel.close()
        assert _health(scaler.health_port) == health_pb2.HealthCheckResponse.SERVING
        with grpc.insecure_channel(f"127.0.0.1:{scaler.grpc_port}") as plain:   # plaintext to a TLS port fails
            with pytest.raises(grpc.RpcError) as e:
                pb_grpc.ExternalScalerStub(plain).IsActive(demo_ref("retail/checkout-cams"), timeout=3)
            assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        scaler.stop(1.0)


def test_mtls_refuses_a_client_without_certificate_and_reloads_changed_files(tmp_path):
    pki = make_pki(tmp_path / "pki")
    live = tmp_path / "live"
    live.mkdir()
    for f in (pki.server_cert, pki.server_key, pki.ca_cert):
        shutil.copy(f, live / f.name)
    tls = server_credentials(str(live / "server.pem"), str(live / "server.key"), str(live / "ca.pem"))
    scaler = start_demo(tls=tls)
    try:
        channel, stub = _secure_stub(scaler.grpc_port, pki.ca_cert, pki.client_cert, pki.client_key)
        assert keda_poll(stub, demo_ref("retail/checkout-cams"))[2].result is True
        channel.close()

        channel, stub = _secure_stub(scaler.grpc_port, pki.ca_cert)        # no client certificate
        with pytest.raises(grpc.RpcError) as e:
            stub.IsActive(demo_ref("retail/checkout-cams"), timeout=5)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
        channel.close()

        # rotate everything to a new CA: new connections need the new material, old CA is refused
        new = make_pki(tmp_path / "pki2", name="rotated")
        for src, dst in ((new.server_cert, "server.pem"), (new.server_key, "server.key"), (new.ca_cert, "ca.pem")):
            shutil.copy(src, live / (dst + ".tmp"))
            (live / (dst + ".tmp")).replace(live / dst)
        channel, stub = _secure_stub(scaler.grpc_port, new.ca_cert, new.client_cert, new.client_key)
        assert keda_poll(stub, demo_ref("retail/checkout-cams"))[2].result is True
        channel.close()
        assert tls.reloads == 1
        channel, stub = _secure_stub(scaler.grpc_port, pki.ca_cert, pki.client_cert, pki.client_key)
        with pytest.raises(grpc.RpcError):
            stub.IsActive(demo_ref("retail/checkout-cams"), timeout=5)
        channel.close()
    finally:
        scaler.stop(1.0)


def test_bad_tls_flags_are_explained(tmp_path):
    with pytest.raises(ValueError, match="both --tls-cert and --tls-key"):
        server_credentials(str(tmp_path / "a.pem"), None, None)
    with pytest.raises(ValueError, match="needs --tls-cert"):
        server_credentials(None, None, str(tmp_path / "ca.pem"))
    with pytest.raises(ValueError, match="not found"):
        server_credentials(str(tmp_path / "a.pem"), str(tmp_path / "a.key"), None)
