"""deploy/ as it is installed: every kustomization renders with `kubectl kustomize`; every built-in
object validates strictly against the Kubernetes schema (kubernetes-validate) and every KEDA,
cert-manager and Prometheus Operator object against its project's published CRD schema
(tests/data/crds, unknown fields refused as `kubectl apply --validate=strict` does); label keys
and values are legal; an install lives in one namespace; and the pieces fit: Services, the
NetworkPolicy, the ServiceMonitor and the PodDisruptionBudget select the pods and name ports they
open, the pods run as the image's non-root user on a read-only root file system, production's TLS
files come from the certificates it issues, quickstart needs no CRD but KEDA's."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.deploy_render import (DEPLOY, KUSTOMIZATIONS, NAMESPACE, OVERLAYS, REPO, SERVE, flag, load_files,
                                 pod_spec, render, the, wattwise_containers)
from tests.test_deploy_labels import LEGAL, label_maps

CRDS = Path(__file__).parent / "data" / "crds"
# The oldest Kubernetes the manifests are written for (gRPC probes, policy/v1, batch/v1 CronJob),
# and the newest kubernetes-validate knows.
KUBERNETES = ("1.30.0", kubernetes_validate.utils.latest_version())
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
NOT_API_OBJECTS = {"KubeSchedulerConfiguration"}   # files kube-scheduler reads (tests/scheduler)
EXAMPLES = "examples (as written)"
SOURCES = [*KUSTOMIZATIONS, EXAMPLES]


def objects_of(source: str) -> list[dict]:
    if source == EXAMPLES:
        return [d for _, d in load_files(DEPLOY / "examples") if d["kind"] not in NOT_API_OBJECTS]
    return list(render(source))


def name_of(obj: dict) -> str:
    return f"{obj['kind']} {obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"


# -- schemas --------------------------------------------------------------------------------------

def _strict(schema):
    """The schema with unknown fields refused wherever it lists its fields and neither allows
    others nor keeps unknown ones (a CRD's structural schema prunes them silently otherwise)."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) for k, v in schema.items()}
    if ("properties" in out and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


@functools.cache
def crd_validators() -> dict[tuple[str, str], jsonschema.Draft4Validator]:
    """(apiVersion, kind) -> a validator of each served version's openAPIV3Schema."""
    out = {}
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        spec = crd["spec"]
        for version in spec["versions"]:
            if version.get("served"):
                schema = _strict(version["schema"]["openAPIV3Schema"])
                out[(f"{spec['group']}/{version['name']}", spec["names"]["kind"])] = jsonschema.Draft4Validator(schema)
    return out


def test_the_vendored_crds_are_the_ones_cited():
    cited = set(re.findall(r"^\| `([^`]+\.yaml)` \|", (CRDS / "SOURCES.md").read_text(), re.M))
    assert cited == {p.name for p in CRDS.glob("*.yaml")}
    assert {kind for _, kind in crd_validators()} >= {"ScaledObject", "TriggerAuthentication", "Certificate",
                                                       "Issuer", "ServiceMonitor"}


@pytest.mark.parametrize("source", SOURCES)
def test_every_object_validates_against_its_schema(source):
    errors, checked = [], 0
    for obj in objects_of(source):
        validator = crd_validators().get((obj["apiVersion"], obj["kind"]))
        if validator is not None:
            errors += [f"{name_of(obj)}: {e.json_path}: {e.message}" for e in validator.iter_errors(obj)]
            checked += 1
            continue
        for version in KUBERNETES:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                errors.append(f"{name_of(obj)}: no schema for {obj['apiVersion']} {obj['kind']} (Kubernetes "
                              f"{version}); a custom resource needs its CRD in tests/data/crds")
            except kubernetes_validate.ValidationError as e:
                errors.append(f"{name_of(obj)} (Kubernetes {version}): {e}")
        checked += 1
    assert checked and not errors, "\n".join(errors)


@pytest.mark.parametrize("name", ["scaledobject-external.yaml", "scaledobject-external-push.yaml"])
def test_the_example_scaledobjects_opt_in_hpa_tolerance_validates_once_uncommented(name):
    """The ScaledObjects carry `tolerance: 0` commented out (it needs a feature gate): uncommented
    as their comment says, both directions validate against KEDA's CRD."""
    text = (DEPLOY / "examples" / name).read_text()
    opened = re.sub(r"^( *)# ( *)(tolerance: 0|scaleUp:)$", r"\1\2\3", text, flags=re.M)
    assert opened != text
    obj = yaml.safe_load(opened)
    behavior = obj["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleUp"]["tolerance"] == 0 and behavior["scaleDown"]["tolerance"] == 0
    errors = [f"{e.json_path}: {e.message}" for e in crd_validators()[(obj["apiVersion"], obj["kind"])].iter_errors(obj)]
    assert not errors, errors


# -- labels and namespace -------------------------------------------------------------------------

LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                       r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


@pytest.mark.parametrize("source", SOURCES)
def test_every_label_is_legal(source):
    checked = 0
    for obj in objects_of(source):
        for where, labels in label_maps(obj):
            for key, value in labels.items():
                prefix, _, name = key.rpartition("/")
                assert LABEL_KEY.match(key) and len(name) <= 63 and len(prefix) <= 253, \
                    f"{name_of(obj)} {where}: {key!r} is not a legal label key"
                assert isinstance(value, str) and len(value) <= 63 and LEGAL.match(value), \
                    f"{name_of(obj)} {where}.{key}: {value!r} is not a legal label value"
                checked += 1
    assert checked


@pytest.mark.parametrize("install", ["base", *OVERLAYS])
def test_an_install_lives_in_one_namespace(install):
    objects = render(install)
    assert [o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"] == [NAMESPACE]
    for obj in objects:
        namespace = obj["metadata"].get("namespace")
        if obj["kind"] in CLUSTER_SCOPED:
            assert namespace is None, name_of(obj)
        else:
            assert namespace == NAMESPACE, name_of(obj)
        for subject in obj.get("subjects") or ():
            assert subject.get("namespace") == NAMESPACE, f"{name_of(obj)}: {subject}"
        assert "namespaceSelector" not in (obj["spec"] if obj["kind"] == "ServiceMonitor" else {}), name_of(obj)


# -- the pieces fit -------------------------------------------------------------------------------

def pods(objects) -> list[tuple[dict, dict]]:
    return [(o, pod_spec(o)) for o in objects if pod_spec(o) is not None]


def selects(selector: dict, labels: dict) -> bool:
    return selector.items() <= labels.items()


def image_user() -> int:
    """The numeric user of the Dockerfile's last stage."""
    users = re.findall(r"^USER\s+(\d+)", (REPO / "Dockerfile").read_text(), re.M)
    return int(users[-1].split(":")[0])


@pytest.mark.parametrize("install", OVERLAYS)
def test_pods_run_restricted_as_the_images_user_on_a_read_only_root(install):
    checked = 0
    for obj, spec in pods(render(install)):
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] == image_user(), name_of(obj)
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name_of(obj)
        for container in spec["containers"]:
            sc = container["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"] and not sc.get("privileged")
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]) and {"cpu", "memory"} <= set(resources["limits"])
            writable = [m["mountPath"] for m in container.get("volumeMounts") or () if not m.get("readOnly")]
            assert writable == ["/tmp"], f"{name_of(obj)}: writable mounts {writable}"
            checked += 1
    assert checked


@pytest.mark.parametrize("install", OVERLAYS)
def test_services_policy_monitor_and_budget_select_the_pods_and_name_their_ports(install):
    objects = render(install)
    deployment = the(objects, "Deployment", "wattwise")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    (container,) = pod_spec(deployment)["containers"]
    ports = {p["name"] for p in container["ports"]}
    assert selects(deployment["spec"]["selector"]["matchLabels"], labels)
    services = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Service"}
    assert set(services) == {"wattwise-scaler", "wattwise-extender", "wattwise-health"}
    for svc in services.values():
        assert selects(svc["spec"]["selector"], labels), name_of(svc)
        assert {p["targetPort"] for p in svc["spec"]["ports"]} <= ports, name_of(svc)
    assert {p["port"] for p in services["wattwise-scaler"]["spec"]["ports"]} == {6000}
    assert {p["port"] for p in services["wattwise-extender"]["spec"]["ports"]} == {8888}

    policy = the(objects, "NetworkPolicy")
    assert selects(policy["spec"]["podSelector"]["matchLabels"], labels) and policy["spec"]["policyTypes"] == ["Ingress"]
    admitted = set()
    for rule in policy["spec"]["ingress"]:
        assert rule.get("from") and rule.get("ports"), "a rule without `from` or `ports` admits everyone"
        admitted |= {p["port"] for p in rule["ports"]}
    assert admitted <= ports and {"grpc", "extender", "metrics", "health-http"} <= admitted

    budget = the(objects, "PodDisruptionBudget")
    assert selects(budget["spec"]["selector"]["matchLabels"], labels)
    assert 0 < budget["spec"]["minAvailable"] < deployment["spec"]["replicas"]

    monitors = [o for o in objects if o["kind"] == "ServiceMonitor"]
    if install == "overlays/quickstart":
        assert not monitors   # needs only KEDA's CRDs
        return
    (monitor,) = monitors
    (health,) = [s for s in services.values() if selects(monitor["spec"]["selector"]["matchLabels"],
                                                          s["metadata"].get("labels") or {})]
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= {p["name"] for p in health["spec"]["ports"]}


def test_rbac_is_least_privilege_and_every_rule_says_why():
    role = the(render("base"), "ClusterRole")
    for rule in role["rules"]:
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
        assert "secrets" not in rule["resources"] and "configmaps" not in rule["resources"]
        writes = set(rule["verbs"]) - {"get", "list", "watch"}
        assert not writes or (rule["resources"] == ["events"] and writes == {"create"}), rule
    lines = [line.strip() for line in (DEPLOY / "base" / "rbac.yaml").read_text().splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if line.startswith("- apiGroups:"):
            assert lines[i - 1].startswith("#"), f"deploy/base/rbac.yaml: no comment says why: {line}"


def test_production_reads_its_tls_files_from_the_certificates_it_issues():
    objects = render("overlays/production")
    args = wattwise_containers(objects)[SERVE]
    spec = pod_spec(the(objects, "Deployment", "wattwise"))
    mounts = {m["mountPath"]: m["name"] for m in spec["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    certificates = {c["spec"]["secretName"]: c for c in objects if c["kind"] == "Certificate"}
    issuers = {i["metadata"]["name"]: i for i in objects if i["kind"] == "Issuer"}
    for name in ("--tls-cert", "--tls-key", "--tls-client-ca", "--extender-tls-cert", "--extender-tls-key",
                 "--extender-client-ca"):
        folder, _, key = flag(args, name).rpartition("/")
        secret = volumes[mounts[folder]]["secret"]["secretName"]
        assert secret in certificates and key in ("tls.crt", "tls.key", "ca.crt"), name
    serving = certificates[volumes[mounts["/etc/wattwise/tls"]]["secret"]["secretName"]]["spec"]
    assert "server auth" in serving["usages"]
    for service in ("wattwise-scaler", "wattwise-extender"):
        assert f"{service}.{NAMESPACE}.svc" in serving["dnsNames"]
    assert f"wattwise-scaler.{NAMESPACE}.svc.cluster.local" in serving["dnsNames"]   # what KEDA dials
    for cert in certificates.values():
        ref = cert["spec"]["issuerRef"]
        assert ref["kind"] == "Issuer" and ref["name"] in issuers, name_of(cert)
    ca_issuer = [i for i in issuers.values() if "ca" in i["spec"]]
    assert [i["spec"]["ca"]["secretName"] for i in ca_issuer] == [
        c["spec"]["secretName"] for c in certificates.values() if c["spec"].get("isCA")]


def test_quickstart_is_plaintext_and_the_settings_reach_the_flags():
    objects = render("overlays/quickstart")
    assert not [o for o in objects if o["kind"] in ("Certificate", "Issuer")]
    args = wattwise_containers(objects)[SERVE]
    settings = next(o for o in objects if o["kind"] == "ConfigMap")["data"]
    assert flag(args, "--prometheus") == settings["PROMETHEUS_URL"]
    assert flag(args, "--objective") == settings["OBJECTIVE"]
    assert yaml.safe_load(settings["grid-zones.yaml"]) in (None, {})   # the bundled map only, until you add zones


# -- what the README tells operators to run fits what deploy/ admits ------------------------------

def _readme_step(starting: str) -> str:
    text = (REPO / "README.md").read_text()
    start = text.index(starting)
    return " ".join(text[start:text.index("\n\n", start)].split())


def test_the_readme_reads_the_plan_through_port_forward_not_from_a_pod_the_policy_refuses():
    """The NetworkPolicy admits only kube-scheduler's pods to the extender's port: `wattwise
    explain` from any other pod would hang there."""
    step = _readme_step("5. See what it decided")
    assert "kubectl port-forward -n wattwise-system svc/wattwise-health 8889" in step
    assert "wattwise explain --address localhost:8889" in step
    assert ".svc:8888" not in step
    policy = the(render("overlays/production"), "NetworkPolicy")
    extender_rules = [r for r in policy["spec"]["ingress"] if {"port": "extender", "protocol": "TCP"} in r["ports"]]
    assert [p["podSelector"]["matchLabels"] for r in extender_rules for p in r["from"]] == [
        {"app.kubernetes.io/name": "wattwise-scheduler"}]


def _mounted_secrets(objects) -> set[str]:
    return {v["secret"]["secretName"] for o in objects if pod_spec(o)
            for v in pod_spec(o).get("volumes", []) if "secret" in v}


def _issued_secrets(objects) -> set[str]:
    return ({o["spec"]["secretName"] for o in objects if o["kind"] == "Certificate"}
            | {o["metadata"]["name"] for o in objects if o["kind"] == "Secret"})


def test_the_second_scheduler_says_it_needs_the_overlay_that_issues_its_secret():
    needed = _mounted_secrets(render("examples/second-scheduler"))
    assert needed == {"wattwise-scheduler-client"}
    assert needed <= _issued_secrets(render("overlays/production"))
    assert not needed & _issued_secrets(render("overlays/quickstart"))
    said = _readme_step("2. Build the image")
    assert "deploy/examples/second-scheduler`, after `deploy/overlays/production` only" in said
    assert "on the quickstart its pods stay in ContainerCreating" in said
    assert "Production only" in (DEPLOY / "examples" / "second-scheduler" / "kustomization.yaml").read_text()


def test_rbac_grants_what_the_code_calls_and_no_more():
    """The process lists and watches what kube/cluster.py names (one list-then-watch each) and
    creates Events; it reads no object by name, so no rule grants `get`."""
    from wattwise.kube.cluster import RESOURCES

    role = the(render("base"), "ClusterRole")
    granted = {(group, resource): frozenset(rule["verbs"]) for rule in role["rules"]
               for group in rule["apiGroups"] for resource in rule["resources"]}
    watched = {(r.group, r.name): frozenset({"list", "watch"}) for r in RESOURCES}
    assert granted == {**watched, ("", "events"): frozenset({"create"})}


def test_the_certificates_ask_no_restart_on_renewal():
    """Both doors reload their certificate files when they change (wattwise/tls_files.py), so a
    comment asking for a restart after a renewal would send operators on an errand."""
    text = (DEPLOY / "overlays" / "production" / "certificates.yaml").read_text()
    assert "restart" not in text and "at start" not in text
