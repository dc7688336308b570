"""The shipped KubeSchedulerConfigurations load and agree with what the server serves."""

from __future__ import annotations

import re

import pytest
import yaml

from .helpers import REPO

CONFIGS = sorted((REPO / "deploy" / "scheduler").glob("kube-scheduler-config.*.yaml"))


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
    for path in (REPO / "deploy" / "scheduler").glob("*.yaml"):
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        assert docs and all("kind" in d for d in docs), path
