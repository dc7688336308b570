"""`wattwise serve` with mTLS on every door (the scaler's gRPC port, its metrics port, the
extender) at DEBUG log level, its TLS files mounted the way the kubelet mounts cert-manager's
Secret: clients without a certificate are refused on each door; a broken renewal (a key that is
not the certificate's) keeps the old certificate with one warning per door naming the file; the
fixed renewal is served without a restart; and the whole log holds no certificate or key content."""

from __future__ import annotations

import base64
import http.client
import json
import re
import ssl
from pathlib import Path

import grpc
import pytest

from tests.kube_fake import FakeKubeApi, wait_until
from tests.live.serve_proc import serve, write_kubeconfig
from tests.scheduler.test_tls_reload import SecretMount, der, secret
from tests.scheduler.tls_certs import Certs, make_certs
from wattwise.scaler.proto import externalscaler_pb2 as pb
from wattwise.scaler.proto import externalscaler_pb2_grpc as pb_grpc

pytestmark = pytest.mark.slow

CHECKOUT = pb.ScaledObjectRef(name="checkout-cams", namespace="retail", scalerMetadata={
    "scalerAddress": "wattwise-scaler.wattwise-system.svc:6000", "workload": "checkout-cams", "streams": "48"})
DOORS = ("scaler gRPC port", "scaler metrics port", "extender")


def context(trust: Certs, cert: Certs | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(trust.ca))
    if cert is not None:
        ctx.load_cert_chain(str(cert.client_cert), str(cert.client_key))
    return ctx


def https_get(port: int, path: str, trust: Certs, cert: Certs | None) -> tuple[bytes, bytes]:
    """The body (after a 200) and the certificate the server presented."""
    conn = http.client.HTTPSConnection("localhost", port, context=context(trust, cert), timeout=10)
    try:
        conn.connect()
        presented = conn.sock.getpeercert(binary_form=True)
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200, (resp.status, body)
        return body, presented
    finally:
        conn.close()


def keda(port: int, trust: Certs, cert: Certs | None) -> float:
    creds = grpc.ssl_channel_credentials(trust.ca.read_bytes(), cert.client_key.read_bytes() if cert else None,
                                         cert.client_cert.read_bytes() if cert else None)
    with grpc.secure_channel(f"localhost:{port}", creds) as channel:
        stub = pb_grpc.ExternalScalerStub(channel)
        spec = stub.GetMetricSpec(CHECKOUT, timeout=20)
        got = stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=CHECKOUT, metricName=spec.metricSpecs[0].metricName),
                              timeout=20)
        return got.metricValues[0].metricValueFloat


def secrets_in(log: str, files: list[Path]) -> list[str]:
    """Which of the PEM files' content shows in the log: any 24 characters of its base64, 32 of its
    DER bytes' hex, or 24 of their Python repr."""
    found = []
    for f in files:
        body = "".join(ln for ln in f.read_text().splitlines() if ln and not ln.startswith("-----"))
        raw = base64.b64decode(body)
        forms = (body, raw.hex(), repr(raw)[2:-1])
        if any(form[i:i + width] in log for form, width in zip(forms, (24, 32, 24))
               for i in range(0, len(form) - width, 4)):
            found.append(str(f))
    return found


@pytest.fixture
def pkis(tmp_path):
    made = []
    for name in ("old", "new"):
        (tmp_path / name).mkdir()
        made.append(make_certs(tmp_path / name))
    if None in made:
        pytest.skip("openssl is not installed")
    return made


def test_mtls_everywhere_reloads_and_logs_no_secret(pkis, tmp_path):
    old, new = pkis
    mount = SecretMount(tmp_path / "tls", secret(old))
    tls = {n: str(mount.path(n)) for n in ("tls.crt", "tls.key", "ca.crt")}
    api = FakeKubeApi.recorded().start()
    served = serve(tmp_path, [
        "--log-level", "DEBUG", "serve", "--scaler", "--extender", "--kubeconfig",
        str(write_kubeconfig(tmp_path / "kubeconfig", api.url)), "--host", "127.0.0.1", "--grpc-port", "0",
        "--health-port", "0", "--http-port", "0", "--metrics-port", "0", "--plan-inline", "--refresh-s", "1",
        "--grace-s", "2",
        "--tls-cert", tls["tls.crt"], "--tls-key", tls["tls.key"], "--tls-client-ca", tls["ca.crt"],
        "--metrics-tls", "mtls",
        "--extender-tls-cert", tls["tls.crt"], "--extender-tls-key", tls["tls.key"],
        "--extender-client-ca", tls["ca.crt"]])
    try:
        m = re.search(r"metrics on https://127\.0\.0\.1:(\d+)/metrics", served.log())
        assert m, served.log()
        plan = (served.http_port, "/plan")
        metrics = (int(m.group(1)), "/metrics")

        def doors_answer(trust: Certs, cert: Certs | None) -> None:
            body, presented = https_get(*plan, trust, cert)
            assert json.loads(body)["workloads"] and presented == der(trust.server_cert)
            body, presented = https_get(*metrics, trust, cert)
            assert b"wattwise_planned_replicas" in body and presented == der(trust.server_cert)
            assert keda(served.grpc_port, trust, cert) > 0

        assert wait_until(lambda: json.loads(https_get(*plan, old, old)[0])["workloads"], 45), served.log()
        doors_answer(old, old)
        for door in (plan, metrics):                      # no client certificate: refused on every door
            with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
                https_get(*door, old, None)
        with pytest.raises(grpc.RpcError):
            keda(served.grpc_port, old, None)

        mount.update(secret(new, key=old.server_key))   # a broken renewal: the old certificate stays
        for _ in range(2):
            doors_answer(old, old)
        mount.update(secret(new))                       # the fixed one: served without a restart
        doors_answer(new, new)
        with pytest.raises(grpc.RpcError):               # the old CA's client certificate: refused now
            keda(served.grpc_port, new, old)
    finally:
        code = served.stop()
        api.stop()
    log = served.log()
    assert code == 0, log
    warnings = [ln for ln in log.splitlines() if " WARNING " in ln and "TLS files refused" in ln]
    assert sorted(next(d for d in DOORS if f" {d}: " in ln) for ln in warnings) == sorted(DOORS), warnings
    assert all(tls["tls.key"] in ln and "does not match" in ln for ln in warnings), warnings
    assert all(sum(f"{d}: TLS files changed; reloaded" in ln for ln in log.splitlines()) == 1 for d in DOORS), log
    assert " DEBUG " in log                             # DEBUG was on
    assert "-----BEGIN" not in log and "PRIVATE KEY" not in log
    pems = [getattr(c, f) for c in (old, new) for f in ("ca", "server_cert", "server_key", "client_cert",
                                                         "client_key", "other_client_key")]
    assert secrets_in(log, pems) == []
