"""The scaler's side of deploy/: the example ScaledObjects point at the Service the installs
create, with trigger metadata the scaler itself accepts and mTLS material KEDA can use; the
Deployment may watch pods for its surge. (Every object's schema: tests/test_kustomize.py.)"""

from __future__ import annotations

from tests.deploy_render import DEPLOY, NAMESPACE, load_files, pod_spec, render, the
from tests.test_deploy_args import shipped_args
from wattwise.models.trigger_metadata import KEDA_OWN_KEYS
from wattwise.scaler.metadata import parse_metadata

EXAMPLES = [d for _, d in load_files(DEPLOY / "examples")]


def keda(kind: str) -> list[dict]:
    return [d for d in EXAMPLES if d["kind"] == kind and d["apiVersion"] == "keda.sh/v1alpha1"]


def test_there_are_both_trigger_types_and_a_trigger_authentication():
    assert sorted(t["type"] for d in keda("ScaledObject") for t in d["spec"]["triggers"]) == ["external",
                                                                                              "external-push"]
    assert len(keda("TriggerAuthentication")) == 1


def test_scaled_objects_call_the_installed_scaler_with_metadata_it_accepts():
    objects = render("overlays/production")
    args = shipped_args("overlays/production")
    service = the(objects, "Service", "wattwise-scaler")
    port = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "grpc")
    for so in keda("ScaledObject"):
        for trig in so["spec"]["triggers"]:
            meta = trig["metadata"]
            assert all(isinstance(v, str) for v in meta.values()), "metadata values must be strings"
            host, _, at = meta["scalerAddress"].rpartition(":")
            assert host == f"{service['metadata']['name']}.{NAMESPACE}.svc.cluster.local" and int(at) == port
            assert f"--scaler-service={host.split('.')[0]}" in args   # so the live loop plans it
            req = parse_metadata(so["metadata"]["name"], so["metadata"]["namespace"], meta)
            assert req.workload_name == so["spec"]["scaleTargetRef"]["name"]
            assert trig.get("metricType", "AverageValue") == "AverageValue"   # target 1, value = replicas


def test_keda_gets_the_client_certificate_the_production_overlay_issues():
    (auth,) = keda("TriggerAuthentication")
    params = {ref["parameter"]: ref for ref in auth["spec"]["secretTargetRef"]}
    assert set(params) == {"caCert", "tlsClientCert", "tlsClientKey"} <= KEDA_OWN_KEYS
    assert {(p, r["key"]) for p, r in params.items()} == {("caCert", "ca.crt"), ("tlsClientCert", "tls.crt"),
                                                          ("tlsClientKey", "tls.key")}
    (secret,) = {r["name"] for r in params.values()}
    issued = {c["spec"]["secretName"]: c for c in render("overlays/production") if c["kind"] == "Certificate"}
    assert "client auth" in issued[secret]["spec"]["usages"]
    for so in keda("ScaledObject"):
        assert so["metadata"]["namespace"] == auth["metadata"]["namespace"]
        assert all(t["authenticationRef"]["name"] == auth["metadata"]["name"] for t in so["spec"]["triggers"])


def test_the_scaler_may_watch_pods_for_its_surge():
    """`--in-cluster` turns on the pod watch (running and ready replicas per node); the
    Deployment's ServiceAccount is bound to a role that may list and watch pods."""
    objects = render("base")
    spec = pod_spec(the(objects, "Deployment", "wattwise"))
    assert "--in-cluster" in spec["containers"][0]["args"]
    account = the(objects, "ServiceAccount", spec["serviceAccountName"])
    binding, role = the(objects, "ClusterRoleBinding"), the(objects, "ClusterRole")
    assert {"kind": "ServiceAccount", "name": account["metadata"]["name"],
            "namespace": account["metadata"]["namespace"]} in binding["subjects"]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": role["metadata"]["name"]}
    assert any(r["apiGroups"] == [""] and "pods" in r["resources"] and {"list", "watch"} <= set(r["verbs"])
               for r in role["rules"])


def test_headless_service_selects_the_pods():
    objects = render("base")
    svc, dep = the(objects, "Service", "wattwise-scaler"), the(objects, "Deployment", "wattwise")
    assert svc["spec"]["clusterIP"] == "None"   # KEDA resolves every pod and round-robins
    assert svc["spec"]["selector"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
