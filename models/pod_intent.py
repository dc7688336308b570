"""What placement must check for a pod: which workload it belongs to and which TEE it needs.

- managed: the pod's `wattwise.io/workload` label names a workload in the current plan; it gets
  every check (TEE, accelerator, SLA, capacity) and energy/carbon scores.
- tee-only: a pod WattWise does not manage that asks for a TEE (a Confidential Containers
  runtime class, or the `wattwise.io/tee` annotation or label), or a pod labelled for a workload
  the plan does not know yet: only the TEE check, neutral scores.
- passthrough: anything else; no work at all.
- invalid: the pod asks for a TEE in a way that cannot be read; every node fails with the reason.

Read from the Pod's API JSON (a plain dict), like `labels.pod_confidentiality`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Mapping

from wattwise.models.eligibility import Reason
from wattwise.models.errors import InvalidInputError
from wattwise.models.labels import MANAGED_LABEL, TEE_ANNOTATION, pod_confidentiality
from wattwise.models.tee import COCO_RUNTIME_CLASSES, NONE, Confidentiality
from wattwise.models.workload import Workload

PROBLEM_CHARS = 200   # a reason quotes at most this much of what could not be read


class PodKind(enum.StrEnum):
    """The value is the label the extender's metrics count the pod under."""

    MANAGED = "managed"
    TEE_ONLY = "tee-only"
    PASSTHROUGH = "passthrough"
    INVALID = "invalid"


@dataclass(frozen=True)
class PodIntent:
    kind: PodKind
    requirement: Confidentiality = NONE   # the pod's own TEE demand (runtime class, annotation, label)
    workload: Workload | None = None
    problem: str = ""

    @property
    def scored(self) -> bool:
        """Whether placement scores the pod's candidates (others get no score: neutral)."""
        return self.kind is PodKind.MANAGED

    @property
    def key(self) -> tuple:
        """Pods with equal keys get equal verdicts on a node: the key of placement's memo."""
        return (self.kind, self.workload.key if self.workload else "", self.requirement.any_of, self.problem)


PASS_THROUGH = PodIntent(PodKind.PASSTHROUGH)


class WorkloadIndex:
    """The plan's workloads by `namespace/name` and by bare name (unique names only)."""

    def __init__(self, workloads):
        self.by_key: dict[str, Workload] = {w.key: w for w in workloads}
        by_name: dict[str, list[Workload]] = {}
        for w in workloads:
            by_name.setdefault(w.name, []).append(w)
        self.by_unique_name: dict[str, Workload] = {n: ws[0] for n, ws in by_name.items() if len(ws) == 1}

    def find(self, label_value: str, pod_namespace: str) -> Workload | None:
        if "/" in label_value:
            return self.by_key.get(label_value)
        return self.by_key.get(f"{pod_namespace}/{label_value}") or self.by_unique_name.get(label_value)


def pod_intent(pod: Mapping, workloads: WorkloadIndex) -> PodIntent:
    """The intent of a Pod whose shape was checked (metadata and spec objects, labels and
    annotations of strings, runtimeClassName a string)."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    labels = meta.get("labels") or {}
    managed_value = labels.get(MANAGED_LABEL)
    asks_tee = TEE_ANNOTATION in labels or TEE_ANNOTATION in (meta.get("annotations") or {})
    if not managed_value and not asks_tee and spec.get("runtimeClassName") not in COCO_RUNTIME_CLASSES:
        return PASS_THROUGH
    try:
        requirement, _ = pod_confidentiality(pod)
    except InvalidInputError as e:
        return PodIntent(PodKind.INVALID, problem=Reason(
            f"the pod's TEE requirement cannot be read: {_shortened(str(e))}", "invalid_pod"))
    workload = None
    if managed_value:
        workload = workloads.find(managed_value, str(meta.get("namespace") or "default"))
    if workload is not None:
        return PodIntent(PodKind.MANAGED, requirement, workload)
    if requirement.required:
        return PodIntent(PodKind.TEE_ONLY, requirement)
    return PASS_THROUGH


def _shortened(text: str) -> str:
    """The message with at most PROBLEM_CHARS of it: it quotes the pod's own value, of any length."""
    return text if len(text) <= PROBLEM_CHARS else text[:PROBLEM_CHARS] + "..."
