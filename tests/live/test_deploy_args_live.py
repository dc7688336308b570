"""The containers exactly as deploy/ runs them (arguments parsed from the manifests), against the
fake Kubernetes API: the extender alone has a plan of the cluster's nodes and scores a managed
pod; the scaler answers KEDA for the cluster's ScaledObject. Only what a test cannot have is
swapped: the API server's address for --in-cluster, files under /etc/wattwise for throw-away
ones (TLS with our own CA, an empty models ConfigMap), ports for free ones, the host for
loopback."""

from __future__ import annotations

import json
import ssl
import urllib.request

import grpc
import pytest

from tests.kube_fake import FakeKubeApi, recorded_list, wait_until
from tests.live.serve_proc import serve, write_kubeconfig
from tests.scheduler.tls_certs import make_certs
from tests.test_deploy_args import CONTAINERS
from wattwise.scaler.proto import externalscaler_pb2 as pb
from wattwise.scaler.proto import externalscaler_pb2_grpc as pb_grpc

pytestmark = pytest.mark.slow

PORT_FLAGS = ("--grpc-port", "--health-port", "--metrics-port", "--http-port", "--extender-health-port")
NODES = sorted(n["metadata"]["name"] for n in recorded_list("nodes")["items"])
CHECKOUT = {"scalerAddress": "wattwise-scaler.wattwise.svc.cluster.local:6000", "workload": "checkout-cams",
            "streams": "48"}


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
    if not any(a.startswith("--host") for a in out):
        out.append("--host=127.0.0.1")
    return out


@pytest.fixture
def setup(tmp_path):
    certs = make_certs(tmp_path)
    if certs is None:
        pytest.skip("openssl is not installed")
    models = tmp_path / "models"
    models.mkdir()
    files = {"/etc/wattwise/tls/tls.crt": certs.server_cert, "/etc/wattwise/tls/tls.key": certs.server_key,
             "/etc/wattwise/tls/ca.crt": certs.ca, "/etc/wattwise/client-ca/ca.crt": certs.ca,
             "/etc/wattwise/models": models}
    api = FakeKubeApi.recorded().start()
    yield api, write_kubeconfig(tmp_path / "kubeconfig", api.url), files, certs
    api.stop()


def https(url: str, certs, doc: dict | None = None):
    context = ssl.create_default_context(cafile=str(certs.ca))
    context.load_cert_chain(str(certs.client_cert), str(certs.client_key))
    req = urllib.request.Request(url, json.dumps(doc).encode() if doc is not None else None,
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10, context=context) as resp:
        return json.load(resp)


def test_the_extender_as_deployed_plans_the_cluster_and_scores(setup, tmp_path):
    api, kubeconfig, files, certs = setup
    served = serve(tmp_path, localised(CONTAINERS["scheduler/extender.yaml:extender"], kubeconfig, files))
    try:
        base = f"https://127.0.0.1:{served.http_port}"
        assert wait_until(lambda: https(base + "/plan", certs)["workloads"], 30), served.log()
        doc = https(base + "/plan", certs)
        assert sorted(n["name"] for n in doc["nodes"]) == NODES
        pod = {"metadata": {"name": "checkout-cams-x1", "namespace": "retail",
                            "labels": {"wattwise.io/workload": "checkout-cams"}},
               "spec": {"runtimeClassName": "kata-qemu-tdx", "containers": [{"name": "inference"}]}}
        scores = https(base + "/prioritize", certs, {"Pod": pod, "NodeNames": NODES})
        assert scores and max(s["Score"] for s in scores) > 0
    finally:
        assert served.stop() == 0, served.log()


def test_the_scaler_as_deployed_answers_keda_for_the_clusters_scaled_object(setup, tmp_path):
    api, kubeconfig, files, certs = setup
    served = serve(tmp_path, localised(CONTAINERS["scaler/deployment.yaml:scaler"], kubeconfig, files))
    try:
        credentials = grpc.ssl_channel_credentials(certs.ca.read_bytes(), certs.client_key.read_bytes(),
                                                   certs.client_cert.read_bytes())
        with grpc.secure_channel(f"127.0.0.1:{served.grpc_port}", credentials) as channel:
            stub = pb_grpc.ExternalScalerStub(channel)
            so = pb.ScaledObjectRef(name="checkout-cams", namespace="retail", scalerMetadata=CHECKOUT)
            spec = stub.GetMetricSpec(so, timeout=20)
            value = stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=so,
                                                         metricName=spec.metricSpecs[0].metricName), timeout=20)
            assert value.metricValues[0].metricValueFloat > 0
            assert stub.IsActive(so, timeout=20).result
    finally:
        assert served.stop() == 0, served.log()
