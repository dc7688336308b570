"""kube-scheduler's NodeUnschedulable, NodeAffinity and TaintToleration rules, as the core applies them."""

import json
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from wattwise.models.admission import (CORDONED, DIDNT_MATCH, NO_RULES, Taint, TaintEffect, Toleration,
                                       admission_reason, rules_from_pod_spec, taints_from_node)
from wattwise.models.errors import InvalidInputError

NODES = {n["metadata"]["name"]: n for n in
         json.loads((Path(__file__).parents[1] / "scheduler" / "data" / "nodes.json").read_text())["items"]}
GPU_TAINT = Taint("nvidia.com/gpu", TaintEffect.NO_SCHEDULE, "present")


def admit(spec: dict, name="n1", labels=None, taints=(), unschedulable=False):
    return admission_reason(rules_from_pod_spec(spec), name, labels or {}, tuple(taints), unschedulable)


def test_tainted_gpu_node_refuses_cpu_pods_and_takes_tolerating_ones():
    reason = admit({}, taints=[GPU_TAINT])
    assert reason == "node(s) had untolerated taint {nvidia.com/gpu=present: NoSchedule}"
    assert reason.category == "taint"
    assert admit({"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]},
                 taints=[GPU_TAINT]) is None
    assert admit({"tolerations": [{"key": "nvidia.com/gpu", "value": "present"}]}, taints=[GPU_TAINT]) is None
    assert admit({"tolerations": [{"key": "nvidia.com/gpu", "value": "absent"}]}, taints=[GPU_TAINT]) is not None
    assert admit({"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"}]},
                 taints=[GPU_TAINT]) is not None
    assert admit({"tolerations": [{"operator": "Exists"}]}, taints=[GPU_TAINT]) is None   # tolerates everything


def test_prefer_no_schedule_never_excludes():
    assert admit({}, taints=[Taint("spot", TaintEffect.PREFER_NO_SCHEDULE)]) is None


def test_cordoned_node_from_recorded_json():
    node = NODES["spr-tdx-cordoned"]
    taints = taints_from_node(node)
    assert taints == (Taint("node.kubernetes.io/unschedulable", TaintEffect.NO_SCHEDULE),)
    assert admission_reason(NO_RULES, "spr-tdx-cordoned", node["metadata"]["labels"], (), True) == CORDONED
    tolerant = rules_from_pod_spec({"tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists",
                                                     "effect": "NoSchedule"}]})
    assert admission_reason(tolerant, "spr-tdx-cordoned", node["metadata"]["labels"], taints, True) is None


def test_node_selector_and_required_affinity():
    labels = {"topology.kubernetes.io/zone": "eu-central-1a", "cores": "64"}
    assert admit({"nodeSelector": {"topology.kubernetes.io/zone": "eu-central-1a"}}, labels=labels) is None
    assert admit({"nodeSelector": {"topology.kubernetes.io/zone": "eu-central-1b"}}, labels=labels) == DIDNT_MATCH

    def affinity(*terms):
        return {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                                              {"nodeSelectorTerms": list(terms)}}}}

    zone_b = {"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["eu-central-1b"]}]}
    big = {"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["32"]}]}
    assert admit(affinity(zone_b), labels=labels) == DIDNT_MATCH
    assert admit(affinity(zone_b, big), labels=labels) is None          # terms are ORed
    assert admit(affinity({"matchExpressions": big["matchExpressions"] + zone_b["matchExpressions"]}),
                 labels=labels) == DIDNT_MATCH                            # expressions are ANDed
    assert admit(affinity({}), labels=labels) == DIDNT_MATCH             # an empty term matches nothing
    assert admit(affinity({"matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}]}), labels=labels) is None
    assert admit(affinity({"matchExpressions": [{"key": "cores", "operator": "Lt", "values": ["8"]}]}),
                 labels=labels) == DIDNT_MATCH
    assert admit(affinity({"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}),
                 labels=labels) is None
    assert admit(affinity({"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n1"]}]}),
                 labels=labels) == DIDNT_MATCH


@pytest.mark.parametrize("spec, field", [
    ({"tolerations": [{"key": "a", "operator": "Maybe"}]}, "spec.tolerations[0].operator"),
    ({"tolerations": [{"key": "a", "effect": "NoWay"}]}, "spec.tolerations[0].effect"),
    ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1", "2"]}]}]}}}}, "values"),
    ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchFields": [{"key": "spec.nodeName", "operator": "In", "values": ["x"]}]}]}}}}, "matchFields"),
])
def test_bad_rules_name_the_field(spec, field):
    with pytest.raises(InvalidInputError, match=field.replace("[", r"\[").replace("]", r"\]")):
        rules_from_pod_spec(spec)


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "nvidia.com/gpu"]), st.sampled_from(["", "x", "y"]),
                          st.sampled_from(list(TaintEffect))), max_size=4),
       st.lists(st.tuples(st.sampled_from(["", "a", "b", "nvidia.com/gpu"]), st.sampled_from(["Equal", "Exists"]),
                          st.sampled_from(["", "x", "y"]), st.sampled_from([None, *TaintEffect])), max_size=4))
def test_a_node_is_admitted_exactly_when_every_hard_taint_is_tolerated(taints, tolerations):
    taints = tuple(Taint(k, e, v) for k, v, e in taints)
    tols = tuple(Toleration(k, op, v, e) for k, op, v, e in tolerations)
    from wattwise.models.admission import PlacementRules
    reason = admission_reason(PlacementRules(tolerations=tols), "n", {}, taints)
    hard = [t for t in taints if t.effect is not TaintEffect.PREFER_NO_SCHEDULE]
    # the rule restated from the API reference, independently of Toleration.tolerates
    def tolerated(t):
        return any((tol.effect is None or tol.effect == t.effect)
                   and ((not tol.key and tol.operator == "Exists")
                        or (tol.key == t.key and (tol.operator == "Exists" or tol.value == t.value)))
                   for tol in tols)
    assert (reason is None) == all(tolerated(t) for t in hard)
