"""The shipped KubeSchedulerConfigurations (deploy/examples) load, agree with what the server
serves, and reach the extender the installs create with the certificates they issue."""

from __future__ import annotations

import re

from urllib.parse import urlsplit

import pytest
import yaml

from tests.deploy_render import DEPLOY, NAMESPACE, load_files, pod_spec, render, the
from tests.test_deploy_args import shipped_args

EXAMPLES = DEPLOY / "examples"
CONFIGS = sorted(EXAMPLES.rglob("kube-scheduler-config.*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_extender_fields(path):
    doc = yaml.safe_load(path.read_text())
    assert doc["apiVersion"] == "kubescheduler.config.k8s.io/v1" and doc["kind"] == "KubeSchedulerConfiguration"
    (ext,) = doc["extenders"]
    assert (ext["filterVerb"], ext["prioritizeVerb"], ext["preemptVerb"]) == ("filter", "prioritize", "preempt")
    assert ext["nodeCacheCapable"] is True
    assert ext["weight"] > 0 and isinstance(ext["ignorable"], bool)
    assert re.fullmatch(r"\d+(\.\d+)?(ms|s)", ext["httpTimeout"])
    assert ext["enableHTTPS"] and ext["urlPrefix"].startswith("https://")
    assert ext["tlsConfig"].get("caFile") or ext["tlsConfig"].get("caData")  # else nothing is verified
    assert not ext.get("managedResources")  # a list would let CoCo pods skip the TEE check
    assert all(p.get("schedulerName") for p in doc["profiles"])


def test_second_scheduler_is_strict_and_default_profile_cannot_deadlock():
    by_name = {p.name: yaml.safe_load(p.read_text()) for p in CONFIGS}
    second = by_name["kube-scheduler-config.second-scheduler.yaml"]
    assert [p["schedulerName"] for p in second["profiles"]] == ["wattwise-scheduler"]
    assert second["extenders"][0]["ignorable"] is False
    default = by_name["kube-scheduler-config.default-profile.yaml"]
    assert [p["schedulerName"] for p in default["profiles"]] == ["default-scheduler"]
    assert default["extenders"][0]["ignorable"] is True


def test_manifests_load():
    docs = load_files(EXAMPLES)
    assert docs and all("kind" in d for _, d in docs)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_the_extender_is_reached_at_the_installed_service_with_a_name_its_certificate_holds(path):
    (ext,) = yaml.safe_load(path.read_text())["extenders"]
    url = urlsplit(ext["urlPrefix"])
    objects = render("overlays/production")
    service = the(objects, "Service", "wattwise-extender")
    assert url.hostname == f"{service['metadata']['name']}.{NAMESPACE}.svc"
    assert url.port == next(p["port"] for p in service["spec"]["ports"] if p["name"] == "extender")
    assert f"--http-port={url.port}" in shipped_args("overlays/production")
    serving = next(c for c in objects if c["kind"] == "Certificate" and c["spec"]["secretName"] == "wattwise-tls")
    assert ext["tlsConfig"]["serverName"] in serving["spec"]["dnsNames"]


def test_the_second_scheduler_mounts_its_configuration_and_the_client_certificate_production_issues():
    objects = render("examples/second-scheduler")
    deployment = the(objects, "Deployment", "wattwise-scheduler")
    spec = pod_spec(deployment)
    (container,) = spec["containers"]
    config_path = next(a.split("=", 1)[1] for a in container["command"] if a.startswith("--config="))
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}

    def volume_of(file: str) -> tuple[dict, str]:
        name = next(n for n, at in mounts.items() if file.startswith(at.rstrip("/") + "/"))
        return volumes[name], file[len(mounts[name].rstrip("/")) + 1:]

    volume, key = volume_of(config_path)
    config = the(objects, "ConfigMap", volume["configMap"]["name"])
    assert yaml.safe_load(config["data"][key]) == yaml.safe_load(
        (EXAMPLES / "second-scheduler" / "kube-scheduler-config.second-scheduler.yaml").read_text())
    tls = yaml.safe_load(config["data"][key])["extenders"][0]["tlsConfig"]
    issued = {c["spec"]["secretName"]: c for c in render("overlays/production") if c["kind"] == "Certificate"}
    for field, expected in (("caFile", "ca.crt"), ("certFile", "tls.crt"), ("keyFile", "tls.key")):
        volume, key = volume_of(tls[field])
        assert key == expected and "client auth" in issued[volume["secret"]["secretName"]]["spec"]["usages"]
    assert deployment["metadata"]["namespace"] == NAMESPACE
    # the NetworkPolicy admits it to the extender
    policy = the(render("overlays/production"), "NetworkPolicy")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert any(peer.get("podSelector", {}).get("matchLabels", {}).items() <= labels.items()
               and "namespaceSelector" not in peer and any(p["port"] == "extender" for p in rule["ports"])
               for rule in policy["spec"]["ingress"] for peer in rule["from"])
