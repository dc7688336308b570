"""Whether a pod template admits a node at all, as kube-scheduler's own filters decide it:
NodeUnschedulable, NodeAffinity (`nodeSelector` and required node affinity) and TaintToleration
(taints with effect NoSchedule or NoExecute). The planner and the extender's filter both ask this,
so a plan never counts on a node kube-scheduler would refuse (GPU nodes are commonly tainted
`nvidia.com/gpu=present:NoSchedule` so that CPU pods stay off them).

Semantics follow the Kubernetes API reference (core/v1 NodeSelectorRequirement, Toleration,
Taint) and the scheduler plugins of the same names:
- `nodeSelector`: every key must be present with exactly that value;
- `requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms`: ORed; within a term all
  `matchExpressions` and `matchFields` are ANDed; a term with neither matches no node;
  operators In, NotIn, Exists, DoesNotExist, Gt, Lt (integers); `matchFields` knows
  `metadata.name` only;
- a taint is tolerated by a toleration whose effect is empty or equal, whose key is equal (or
  empty with operator Exists: every taint), and whose operator is Exists, or Equal (the default)
  with an equal value. PreferNoSchedule taints never exclude a node;
- a cordoned node (`spec.unschedulable`) is excluded unless the pod tolerates
  `node.kubernetes.io/unschedulable:NoSchedule`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from wattwise.models.errors import InvalidInputError
from wattwise.models.reason import Reason

UNSCHEDULABLE_TAINT_KEY = "node.kubernetes.io/unschedulable"
# Taints Kubernetes itself sets from a node's state (cordon, not-ready, unreachable, pressure,
# cloud initialisation): they come and go with the node's condition, unlike an operator's taint.
CONDITION_TAINT_PREFIXES = ("node.kubernetes.io/", "node.cloudprovider.kubernetes.io/")


class TaintEffect(str, Enum):
    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


class SelectorOperator(str, Enum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"
    GT = "Gt"
    LT = "Lt"


@dataclass(frozen=True)
class Taint:
    key: str
    effect: TaintEffect
    value: str = ""


def is_condition_taint(taint: Taint) -> bool:
    return taint.key.startswith(CONDITION_TAINT_PREFIXES)


@dataclass(frozen=True)
class Toleration:
    key: str = ""
    operator: str = "Equal"          # "Equal" or "Exists"
    value: str = ""
    effect: TaintEffect | None = None   # None: every effect

    def tolerates(self, taint: Taint) -> bool:
        if self.effect is not None and self.effect != taint.effect:
            return False
        if not self.key:
            return self.operator == "Exists"
        if self.key != taint.key:
            return False
        return self.operator == "Exists" or self.value == taint.value


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: SelectorOperator
    values: tuple[str, ...] = ()

    def matches(self, value: str | None) -> bool:
        op = self.operator
        if op is SelectorOperator.EXISTS:
            return value is not None
        if op is SelectorOperator.DOES_NOT_EXIST:
            return value is None
        if op is SelectorOperator.IN:
            return value is not None and value in self.values
        if op is SelectorOperator.NOT_IN:
            return value is None or value not in self.values
        if value is None:
            return False
        try:   # Gt/Lt: the label value and the one given value compare as integers
            have, bound = int(value), int(self.values[0])
        except ValueError:
            return False
        return have > bound if op is SelectorOperator.GT else have < bound


@dataclass(frozen=True)
class Term:
    expressions: tuple[Requirement, ...] = ()
    fields: tuple[Requirement, ...] = ()   # on metadata.name only

    def matches(self, node_name: str, labels: Mapping[str, str]) -> bool:
        if not self.expressions and not self.fields:
            return False
        return (all(r.matches(labels.get(r.key)) for r in self.expressions)
                and all(r.matches(node_name) for r in self.fields))


@dataclass(frozen=True)
class PlacementRules:
    """What of a pod template limits the nodes it may land on."""
    node_selector: tuple[tuple[str, str], ...] = ()
    required_terms: tuple[Term, ...] | None = None   # None: no required node affinity
    tolerations: tuple[Toleration, ...] = ()


NO_RULES = PlacementRules()

DIDNT_MATCH = Reason("node(s) didn't match Pod's node affinity/selector", "node_affinity")
CORDONED = Reason("node(s) were unschedulable (cordoned)", "unschedulable")


def untolerated_reason(taint: Taint) -> Reason:
    shown = f"{taint.key}={taint.value}" if taint.value else taint.key
    return Reason(f"node(s) had untolerated taint {{{shown}: {taint.effect.value}}}", "taint")


def admission_reason(rules: PlacementRules, node_name: str, labels: Mapping[str, str],
                     taints: tuple[Taint, ...], unschedulable: bool = False) -> Reason | None:
    """None when kube-scheduler's filters would admit the node for a pod with these rules."""
    if unschedulable and not any(t.tolerates(Taint(UNSCHEDULABLE_TAINT_KEY, TaintEffect.NO_SCHEDULE))
                                 for t in rules.tolerations):
        return CORDONED
    if any(labels.get(k) != v for k, v in rules.node_selector):
        return DIDNT_MATCH
    if rules.required_terms is not None and not any(t.matches(node_name, labels) for t in rules.required_terms):
        return DIDNT_MATCH
    for taint in taints:
        if taint.effect is TaintEffect.PREFER_NO_SCHEDULE:
            continue
        if not any(t.tolerates(taint) for t in rules.tolerations):
            return untolerated_reason(taint)
    return None


# -- decoding from API JSON (pod spec, node spec) ------------------------------------------------
def _effect(value: Any, path: str) -> TaintEffect:
    try:
        return TaintEffect(value)
    except ValueError:
        raise InvalidInputError(path, f"unknown taint effect {str(value)[:40]!r}",
                                "use NoSchedule, PreferNoSchedule or NoExecute") from None


def taints_from_node(node: Mapping[str, Any]) -> tuple[Taint, ...]:
    """A Node's `spec.taints` (API JSON)."""
    out = []
    for i, t in enumerate(((node.get("spec") or {}).get("taints")) or ()):
        if not isinstance(t, Mapping) or not t.get("key"):
            raise InvalidInputError(f"spec.taints[{i}]", "a taint needs a key")
        out.append(Taint(str(t["key"]), _effect(t.get("effect"), f"spec.taints[{i}].effect"), str(t.get("value") or "")))
    return tuple(out)


def _requirements(items: Any, path: str) -> tuple[Requirement, ...]:
    out = []
    for i, r in enumerate(items or ()):
        where = f"{path}[{i}]"
        if not isinstance(r, Mapping) or not isinstance(r.get("key"), str):
            raise InvalidInputError(where, "a node selector requirement needs a key")
        try:
            op = SelectorOperator(r.get("operator"))
        except ValueError:
            raise InvalidInputError(f"{where}.operator", f"unknown operator {str(r.get('operator'))[:40]!r}",
                                    "use In, NotIn, Exists, DoesNotExist, Gt or Lt") from None
        values = tuple(str(v) for v in (r.get("values") or ()))
        if op in (SelectorOperator.GT, SelectorOperator.LT) and len(values) != 1:
            raise InvalidInputError(f"{where}.values", f"{op.value} takes exactly one integer value")
        out.append(Requirement(r["key"], op, values))
    return tuple(out)


def runtime_class_scheduling(runtime_classes: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """`scheduling` of node.k8s.io/v1 RuntimeClass objects (API JSON) that have one, by name:
    kata-deploy's classes select `katacontainers.io/kata-runtime: "true"`, and a cluster that
    taints its TEE nodes puts the toleration there."""
    out: dict[str, Mapping[str, Any]] = {}
    for rc in runtime_classes:
        name = (rc.get("metadata") or {}).get("name")
        scheduling = rc.get("scheduling")
        if name and isinstance(scheduling, Mapping) and scheduling:
            out[str(name)] = scheduling
    return out


def admitted_pod_spec(spec: Mapping[str, Any], scheduling_by_class: Mapping[str, Mapping[str, Any]],
                      path: str = "spec") -> Mapping[str, Any]:
    """The pod spec as the RuntimeClass admission controller leaves it: the class's
    `scheduling.nodeSelector` merged into the pod's and its `scheduling.tolerations` added. A key
    both set to different values is refused, as the API server refuses such pods."""
    scheduling = scheduling_by_class.get(str(spec.get("runtimeClassName") or ""))
    if not scheduling:
        return spec
    selector = dict(spec.get("nodeSelector") or {})
    from_class = scheduling.get("nodeSelector") or {}
    if not isinstance(from_class, Mapping) or not isinstance(scheduling.get("tolerations") or [], list):
        raise InvalidInputError(f"RuntimeClass {spec.get('runtimeClassName')}.scheduling",
                                "nodeSelector must map label keys to values and tolerations be a list")
    for key, value in from_class.items():
        if key in selector and selector[key] != value:
            raise InvalidInputError(f"{path}.nodeSelector", f"{key}={selector[key]} conflicts with "
                                    f"{key}={value} of RuntimeClass {spec.get('runtimeClassName')}",
                                    "the API server would refuse its pods: drop or align the pod's")
        selector[key] = value
    return {**spec, "nodeSelector": selector,
            "tolerations": [*(spec.get("tolerations") or ()), *(scheduling.get("tolerations") or ())]}


def rules_from_pod_spec(spec: Mapping[str, Any], path: str = "spec") -> PlacementRules:
    """The placement rules of a pod spec (a Deployment's or StatefulSet's `spec.template.spec`)."""
    selector = spec.get("nodeSelector") or {}
    if not isinstance(selector, Mapping):
        raise InvalidInputError(f"{path}.nodeSelector", "must map label keys to values")
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    terms = None
    if required is not None:
        where = f"{path}.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"
        terms = tuple(Term(_requirements(t.get("matchExpressions"), f"{where}[{i}].matchExpressions"),
                           _requirements(t.get("matchFields"), f"{where}[{i}].matchFields"))
                      for i, t in enumerate(required.get("nodeSelectorTerms") or ()))
        for i, term in enumerate(terms):
            if any(r.key != "metadata.name" for r in term.fields):
                raise InvalidInputError(f"{where}[{i}].matchFields", "only metadata.name can be matched as a field")
    tolerations = []
    for i, t in enumerate(spec.get("tolerations") or ()):
        op = t.get("operator") or "Equal"
        if op not in ("Equal", "Exists"):
            raise InvalidInputError(f"{path}.tolerations[{i}].operator", f"unknown operator {str(op)[:40]!r}",
                                    "use Equal or Exists")
        effect = _effect(t["effect"], f"{path}.tolerations[{i}].effect") if t.get("effect") else None
        tolerations.append(Toleration(str(t.get("key") or ""), op, str(t.get("value") or ""), effect))
    return PlacementRules(tuple(sorted((str(k), str(v)) for k, v in selector.items())), terms, tuple(tolerations))
