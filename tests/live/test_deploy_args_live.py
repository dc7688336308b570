"""The container exactly as deploy/'s overlays run it (arguments from the rendered manifests, as
the kubelet expands them), against the fake Kubernetes API: ONE process serves both doors. The
extender has a plan of the cluster's nodes and scores a managed pod; the scaler answers KEDA for
the cluster's ScaledObject. Production speaks mTLS on both doors, quickstart plaintext. Only what
a test cannot have is swapped: the API server's address for --in-cluster, files under
/etc/wattwise for throw-away ones (TLS with our own CA, the settings ConfigMap's files as
rendered, an empty models folder), ports for free ones, the host for loopback."""

from __future__ import annotations

import json
import ssl
import urllib.request

import grpc
import pytest

from tests.deploy_render import render, the
from tests.kube_fake import FakeKubeApi, recorded_list, wait_until
from tests.live.serve_proc import serve, write_kubeconfig
from tests.scheduler.tls_certs import make_certs
from tests.test_deploy_args import shipped_args
from wattwise.scaler.proto import externalscaler_pb2 as pb
from wattwise.scaler.proto import externalscaler_pb2_grpc as pb_grpc

pytestmark = pytest.mark.slow

PORT_FLAGS = ("--grpc-port", "--health-port", "--metrics-port", "--http-port", "--extender-health-port")
NODES = sorted(n["metadata"]["name"] for n in recorded_list("nodes")["items"])
CHECKOUT = {"scalerAddress": "wattwise-scaler.wattwise-system.svc.cluster.local:6000", "workload": "checkout-cams",
            "streams": "48"}
MANAGED_POD = {"metadata": {"name": "checkout-cams-x1", "namespace": "retail",
                            "labels": {"wattwise.io/workload": "checkout-cams"}},
               "spec": {"runtimeClassName": "kata-qemu-tdx", "containers": [{"name": "inference"}]}}


def localised(args: list[str], kubeconfig, files: dict[str, str]) -> list[str]:
    out = []
    for a in args:
        flag, _, value = a.partition("=")
        if a == "--in-cluster":
            out += ["--kubeconfig", str(kubeconfig)]
        elif flag in PORT_FLAGS:
            out.append(f"{flag}=0")
        elif flag == "--host":
            out.append("--host=127.0.0.1")
        elif value.startswith("/etc/wattwise/"):
            out.append(f"{flag}={files[value]}")
        else:
            out.append(a)
    return out


def local_files(overlay: str, tmp_path, certs) -> dict[str, object]:
    """/etc/wattwise/... -> a local stand-in: TLS files from our CA, the settings ConfigMap's files
    as the overlay renders them, an empty models folder (no ConfigMap: priors)."""
    files: dict[str, object] = {"/etc/wattwise/tls/tls.crt": certs.server_cert,
                                "/etc/wattwise/tls/tls.key": certs.server_key,
                                "/etc/wattwise/tls/ca.crt": certs.ca}
    models = tmp_path / "models"
    models.mkdir()
    files["/etc/wattwise/models"] = models
    settings = next(o for o in render(overlay) if o["kind"] == "ConfigMap"
                    and o["metadata"]["name"].startswith("wattwise-settings"))
    folder = tmp_path / "settings"
    folder.mkdir()
    for key, text in settings["data"].items():
        (folder / key).write_text(text)
        files[f"/etc/wattwise/settings/{key}"] = folder / key
    return files


@pytest.fixture
def api(tmp_path):
    api = FakeKubeApi.recorded().start()
    yield api, write_kubeconfig(tmp_path / "kubeconfig", api.url)
    api.stop()


@pytest.fixture
def certs(tmp_path):
    made = make_certs(tmp_path)
    if made is None:
        pytest.skip("openssl is not installed")
    return made


def https_call(certs):
    context = ssl.create_default_context(cafile=str(certs.ca))
    context.load_cert_chain(str(certs.client_cert), str(certs.client_key))

    def call(url: str, doc: dict | None = None):
        req = urllib.request.Request(url, json.dumps(doc).encode() if doc is not None else None,
                                     {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10, context=context) as resp:
            return json.load(resp)
    return call


def http_call(url: str, doc: dict | None = None):
    req = urllib.request.Request(url, json.dumps(doc).encode() if doc is not None else None,
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.load(resp)


@pytest.mark.parametrize("overlay", ["overlays/production", "overlays/quickstart"])
def test_the_container_as_deployed_serves_both_doors_from_one_plan(overlay, api, certs, tmp_path):
    _, kubeconfig = api
    args = shipped_args(overlay)
    mtls = any(a.startswith("--tls-client-ca=") for a in args)
    assert mtls == (overlay == "overlays/production")
    assert the(render(overlay), "Deployment", "wattwise")["spec"]["replicas"] == 2
    served = serve(tmp_path, localised(args, kubeconfig, local_files(overlay, tmp_path, certs)))
    try:
        # the extender: kube-scheduler's door (HTTPS with a client certificate in production)
        call = https_call(certs) if mtls else http_call
        base = f"{'https' if mtls else 'http'}://127.0.0.1:{served.http_port}"
        assert wait_until(lambda: call(base + "/plan")["workloads"], 30), served.log()
        assert sorted(n["name"] for n in call(base + "/plan")["nodes"]) == NODES
        scores = call(base + "/prioritize", {"Pod": MANAGED_POD, "NodeNames": NODES})
        assert scores and max(s["Score"] for s in scores) > 0
        # the scaler: KEDA's door, in the same process (mTLS with KEDA's client certificate in production)
        address = f"127.0.0.1:{served.grpc_port}"
        channel = (grpc.secure_channel(address, grpc.ssl_channel_credentials(
            certs.ca.read_bytes(), certs.client_key.read_bytes(), certs.client_cert.read_bytes()))
            if mtls else grpc.insecure_channel(address))
        with channel:
            stub = pb_grpc.ExternalScalerStub(channel)
            so = pb.ScaledObjectRef(name="checkout-cams", namespace="retail", scalerMetadata=CHECKOUT)
            spec = stub.GetMetricSpec(so, timeout=20)
            value = stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=so,
                                                         metricName=spec.metricSpecs[0].metricName), timeout=20)
            assert value.metricValues[0].metricValueFloat > 0
            assert stub.IsActive(so, timeout=20).result
    finally:
        assert served.stop() == 0, served.log()
