"""deploy/scaler: plain manifests validate against the Kubernetes schema; KEDA's CRDs use only
field names KEDA's ScaledObject / TriggerAuthentication define; every trigger's metadata is
accepted by the scaler itself."""

from __future__ import annotations

from pathlib import Path

import yaml

from wattwise.scaler.metadata import parse_metadata

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "scaler"

# Field names of keda.sh/v1alpha1 (KEDA 2.x CRDs: keda.sh_scaledobjects, keda.sh_triggerauthentications).
SCALEDOBJECT_SPEC = {"scaleTargetRef", "pollingInterval", "cooldownPeriod", "initialCooldownPeriod",
                     "idleReplicaCount", "minReplicaCount", "maxReplicaCount", "fallback", "advanced", "triggers"}
SCALE_TARGET = {"apiVersion", "kind", "name", "envSourceContainerName"}
FALLBACK = {"failureThreshold", "replicas", "behavior"}
TRIGGER = {"type", "name", "metadata", "authenticationRef", "metricType", "useCachedMetrics"}
AUTH_REF = {"name", "kind"}
TRIGGERAUTH_SPEC = {"secretTargetRef", "env", "configMapTargetRef", "hashiCorpVault", "podIdentity",
                    "azureKeyVault", "awsSecretManager", "gcpSecretManager", "boundServiceAccountToken"}
SECRET_REF = {"parameter", "name", "key"}


def docs():
    for path in sorted(DEPLOY.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                yield path.name, doc


def test_there_is_one_of_each():
    kinds = sorted((d["kind"], d["spec"]["triggers"][0]["type"] if d["kind"] == "ScaledObject" else "")
                   for _, d in docs())
    assert kinds == [("ClusterRole", ""), ("ClusterRoleBinding", ""), ("Deployment", ""),
                     ("ScaledObject", "external"), ("ScaledObject", "external-push"), ("Service", ""),
                     ("ServiceAccount", ""), ("TriggerAuthentication", "")]


def test_the_scaler_may_watch_pods_for_its_surge():
    """`--in-cluster` turns on the pod watch (running and ready replicas per node); the
    Deployment's ServiceAccount is bound to a role that may list and watch pods."""
    by_kind = {d["kind"]: d for _, d in docs()}
    dep, account = by_kind["Deployment"], by_kind["ServiceAccount"]
    pod_spec = dep["spec"]["template"]["spec"]
    assert "--in-cluster" in pod_spec["containers"][0]["args"]
    assert pod_spec["serviceAccountName"] == account["metadata"]["name"]
    assert account["metadata"]["namespace"] == dep["metadata"]["namespace"]
    binding, role = by_kind["ClusterRoleBinding"], by_kind["ClusterRole"]
    assert {"kind": "ServiceAccount", "name": account["metadata"]["name"],
            "namespace": account["metadata"]["namespace"]} in binding["subjects"]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": role["metadata"]["name"]}
    assert any(r["apiGroups"] == [""] and "pods" in r["resources"] and {"list", "watch"} <= set(r["verbs"])
               for r in role["rules"])


def test_plain_manifests_validate_against_kubernetes_schema():
    import kubernetes_validate as kv   # a test extra: pip install -e '.[test]'

    for _name, doc in docs():
        if doc["apiVersion"].startswith("keda.sh/"):
            continue
        kv.validate(doc, "1.30.0", strict=True)


def test_headless_service_selects_the_deployment_and_probes_use_plaintext_health():
    by_kind = {d["kind"]: d for _, d in docs() if d["kind"] in ("Service", "Deployment")}
    svc, dep = by_kind["Service"], by_kind["Deployment"]
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["selector"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["grpc"]["port"] == 6001 and "--health-port=6001" in container["args"]
    assert any(a.startswith("--tls-client-ca=") for a in container["args"])


def test_keda_objects_use_only_keda_field_names_and_valid_metadata():
    auth_names = set()
    for _, d in docs():
        if d["kind"] == "TriggerAuthentication":
            assert d["apiVersion"] == "keda.sh/v1alpha1"
            assert set(d["spec"]) <= TRIGGERAUTH_SPEC
            params = set()
            for ref in d["spec"]["secretTargetRef"]:
                assert set(ref) == SECRET_REF
                params.add(ref["parameter"])
            assert params == {"caCert", "tlsClientCert", "tlsClientKey"}
            auth_names.add(d["metadata"]["name"])
    for _, d in docs():
        if d["kind"] != "ScaledObject":
            continue
        assert d["apiVersion"] == "keda.sh/v1alpha1"
        spec = d["spec"]
        assert set(spec) <= SCALEDOBJECT_SPEC
        assert set(spec["scaleTargetRef"]) <= SCALE_TARGET
        assert set(spec.get("fallback", {})) <= FALLBACK
        for trig in spec["triggers"]:
            assert set(trig) <= TRIGGER and set(trig["authenticationRef"]) <= AUTH_REF
            assert trig["type"] in ("external", "external-push") and trig.get("metricType", "AverageValue") == "AverageValue"
            assert trig["authenticationRef"]["name"] in auth_names
            assert all(isinstance(v, str) for v in trig["metadata"].values()), "metadata values must be strings"
            req = parse_metadata(d["metadata"]["name"], d["metadata"]["namespace"], trig["metadata"])
            assert req.workload_name == spec["scaleTargetRef"]["name"]
