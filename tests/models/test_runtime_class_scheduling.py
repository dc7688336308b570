"""A RuntimeClass's `scheduling` (node.k8s.io/v1) is part of where its pods may run: the admission
controller merges its nodeSelector into each pod's and adds its tolerations. kata-deploy's classes
select `katacontainers.io/kata-runtime: "true"` (the label it puts on the nodes it installed
on); a cluster that taints its TEE nodes puts the toleration in the class. The planner reads a
workload's rules from its pod template merged the same way, so it plans neither nodes without
Kata nor refuses the tainted TEE nodes its pods tolerate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wattwise.models.admission import (DIDNT_MATCH, Taint, TaintEffect, admission_reason, admitted_pod_spec,
                                       runtime_class_scheduling)
from wattwise.models.cluster_workloads import cluster_workloads
from wattwise.models.errors import InvalidInputError

KUBE = Path(__file__).resolve().parents[1] / "data" / "kube"
KATA = {"katacontainers.io/kata-runtime": "true"}
TEE_TAINT = Taint("tee", TaintEffect.NO_SCHEDULE, "tdx")


def items(name: str) -> list[dict]:
    return json.loads((KUBE / f"{name}.json").read_text())["items"]


def checkout_rules(runtime_classes: list[dict]):
    targets = {("Deployment", d["metadata"]["namespace"], d["metadata"]["name"]): d for d in items("deployments")}
    read = cluster_workloads(items("scaledobjects"), targets, {}, is_ours=lambda address: True,
                             runtime_scheduling=runtime_class_scheduling(runtime_classes))
    assert not read.left_out, read.left_out
    return read.bases["retail/checkout-cams"].placement


def test_kata_deploys_classes_keep_the_workload_on_nodes_with_kata():
    assert runtime_class_scheduling(items("runtimeclasses")) == {"kata-qemu-snp": {"nodeSelector": KATA},
                                                                 "kata-qemu-tdx": {"nodeSelector": KATA}}
    rules = checkout_rules(items("runtimeclasses"))
    assert admission_reason(rules, "spr-tdx-9", {}, ()) == DIDNT_MATCH          # TDX, but no Kata installed
    assert admission_reason(rules, "spr-tdx-1", KATA, ()) is None


def test_a_toleration_in_the_class_admits_the_tainted_tee_nodes():
    classes = items("runtimeclasses")
    for rc in classes:
        rc["scheduling"] = {**rc["scheduling"], "tolerations": [{"key": "tee", "operator": "Equal", "value": "tdx",
                                                                 "effect": "NoSchedule"}]}
    assert admission_reason(checkout_rules(classes), "spr-tdx-1", KATA, (TEE_TAINT,)) is None
    assert admission_reason(checkout_rules(items("runtimeclasses")), "spr-tdx-1", KATA, (TEE_TAINT,)) is not None


def test_a_pod_selector_that_contradicts_its_class_is_refused_as_the_api_server_refuses_it():
    spec = {"runtimeClassName": "kata-qemu-tdx", "nodeSelector": {"katacontainers.io/kata-runtime": "false"}}
    with pytest.raises(InvalidInputError, match="conflicts with katacontainers.io/kata-runtime=true"):
        admitted_pod_spec(spec, runtime_class_scheduling(items("runtimeclasses")))
    plain = {"containers": []}
    assert admitted_pod_spec(plain, runtime_class_scheduling(items("runtimeclasses"))) is plain
