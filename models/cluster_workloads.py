"""The workloads a process watches: KEDA ScaledObjects (API JSON) whose trigger points at this
WattWise, read without waiting for KEDA to call.

For each ScaledObject with a trigger of type `external` or `external-push` whose metadata
`scalerAddress` is ours:
- the trigger's metadata goes through the parse KEDA's calls go through
  (`trigger_metadata.parse_metadata`, with the ScaledObject's name and namespace), after a
  `...FromEnv` key is resolved as KEDA does: from the literal `env` of the scale target's
  container `spec.scaleTargetRef.envSourceContainerName`, else its first container;
- the base workload comes from the scale target's pod template (an apps/v1 Deployment or
  StatefulSet): its TEE requirement (`labels.pod_confidentiality`: runtimeClassName, or the
  `wattwise.io/tee` annotation), its replica footprint (`room.pod_request`, the RuntimeClass's
  overhead included), its placement rules (`admission.rules_from_pod_spec`) and the
  ScaledObject's `minReplicaCount` (KEDA's default 0) and `maxReplicaCount` (100). The metadata
  keys `tee`, `cpu`, `memory`, `gpu`, `minReplicas` and `maxReplicas` override them when the
  workload is built (`workload_build.build_workload`). A `tee` weaker than what the template's
  runtime class needs is refused: its pods would be turned away wherever the plan put them. So
  is a `tee` the template does not ask for at all: its pods would show no TEE demand of their
  own, so the extender could not enforce it whenever the plan does not cover them.

The workload's key is the request's (`namespace/<metadata workload>`, as KEDA's calls name it),
so the plan, KEDA's answers and the pods' `wattwise.io/workload` label (the workload name) agree;
by convention the workload is named after its ScaledObject. Each ScaledObject that cannot be
planned is left out with a one-line reason (invalid metadata, a missing or unsupported scale
target, two WattWise triggers, a workload another ScaledObject already names); the others are read
as usual. Each workload's scale target kind is kept (`kinds`): a StatefulSet's answer carries no
make-before-break surge (`models.rollout.surge_applies`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from wattwise.models.admission import admitted_pod_spec, rules_from_pod_spec
from wattwise.models.errors import InvalidInputError
from wattwise.models.labels import TEE_ANNOTATION, pod_confidentiality
from wattwise.models.resources import Resources
from wattwise.models.room import pod_request
from wattwise.models.tee import Confidentiality
from wattwise.models.trigger_metadata import MetadataError, ScalerRequest, parse_metadata
from wattwise.models.workload import Demand, Workload
from wattwise.models.workload_build import build_workload

TRIGGER_TYPES = ("external", "external-push")
TARGET_API_VERSION = "apps/v1"
TARGET_KINDS = ("Deployment", "StatefulSet")
KEDA_MIN_REPLICAS = 0      # ScaledObject spec.minReplicaCount when absent
KEDA_MAX_REPLICAS = 100    # ScaledObject spec.maxReplicaCount when absent
FROM_ENV = "FromEnv"
REASON_CHARS = 400


@dataclass(frozen=True)
class ClusterWorkloads:
    requests: tuple[ScalerRequest, ...]          # one per ScaledObject read, by namespace and name
    bases: Mapping[str, Workload]                # workload key -> the base for build_workload
    left_out: tuple[tuple[str, str], ...]        # (namespace/name of the ScaledObject, why)
    kinds: Mapping[str, str] = field(default_factory=dict)   # workload key -> scaleTargetRef kind


def cluster_workloads(scaled_objects_json: Iterable[Mapping[str, Any]],
                      targets: Mapping[tuple[str, str, str], Mapping[str, Any]],
                      runtime_overheads: Mapping[str, Resources], *,
                      is_ours: Callable[[str], bool],
                      runtime_scheduling: Mapping[str, Mapping[str, Any]] | None = None) -> ClusterWorkloads:
    """The requests and base workloads of the ScaledObjects pointing at us (see the module notes).
    `targets`: (kind, namespace, name) of apps/v1 Deployments and StatefulSets -> their JSON.
    `runtime_scheduling`: RuntimeClass name -> its `scheduling` (`admission.runtime_class_scheduling`),
    merged into each pod template's placement rules as the admission controller merges it."""
    requests: list[ScalerRequest] = []
    bases: dict[str, Workload] = {}
    kinds: dict[str, str] = {}
    owner: dict[str, str] = {}
    left_out: list[tuple[str, str]] = []
    for so in sorted(scaled_objects_json, key=_ref):
        ref = _ref(so)
        where = f"{ref[0]}/{ref[1]}"
        try:
            found = _our_trigger(so, is_ours)
            if found is None:
                continue
            request, base = _read(so, ref, *found, targets, runtime_overheads, runtime_scheduling or {})
        except (InvalidInputError, TypeError, ValueError, AttributeError, KeyError) as e:
            left_out.append((where, _one_line(str(e))))
            continue
        key = request.workload_key
        if key in bases:
            left_out.append((where, f"names workload {key} as ScaledObject {owner[key]} does "
                                    "(give each ScaledObject its own `workload`)"))
            continue
        requests.append(request)
        bases[key] = base
        kinds[key] = str(((so.get("spec") or {}).get("scaleTargetRef") or {}).get("kind") or "Deployment")
        owner[key] = where
    return ClusterWorkloads(tuple(requests), bases, tuple(left_out), kinds)


def _ref(so: Any) -> tuple[str, str]:
    meta = so.get("metadata") if isinstance(so, Mapping) else None
    meta = meta if isinstance(meta, Mapping) else {}
    return str(meta.get("namespace") or "default"), str(meta.get("name") or "?")


def _our_trigger(so: Mapping[str, Any], is_ours: Callable[[str], bool]) -> tuple[int, Mapping[str, str]] | None:
    """(index, metadata) of the one trigger pointing at us; None when none does."""
    ours = []
    for i, t in enumerate((so.get("spec") or {}).get("triggers") or ()):
        if not isinstance(t, Mapping) or t.get("type") not in TRIGGER_TYPES:
            continue
        metadata = t.get("metadata")
        if not isinstance(metadata, Mapping):
            continue
        address = metadata.get("scalerAddress")
        if isinstance(address, str) and is_ours(address):
            ours.append((i, metadata))
    if len(ours) > 1:
        raise InvalidInputError("spec.triggers", f"{len(ours)} triggers point at this WattWise "
                                f"(indexes {', '.join(str(i) for i, _ in ours)})", "keep one")
    if ours:
        index = ours[0][0]
        metric_type = so["spec"]["triggers"][index].get("metricType")
        if metric_type not in (None, "", "AverageValue"):
            # the answer is the replicas wanted against a target of 1 per pod; with Value the HPA
            # multiplies it by the ready pods (4 ready x 4 planned asks for 16, then more)
            raise InvalidInputError(f"spec.triggers[{index}].metricType", f"{metric_type!r} multiplies WattWise's "
                                    "answer by the pods ready", "leave it out or set AverageValue, its default")
    return ours[0] if ours else None


def _read(so: Mapping[str, Any], ref: tuple[str, str], index: int, metadata: Mapping[str, Any],
          targets: Mapping[tuple[str, str, str], Mapping[str, Any]],
          overheads: Mapping[str, Resources],
          scheduling: Mapping[str, Mapping[str, Any]]) -> tuple[ScalerRequest, Workload]:
    namespace, name = ref
    spec = so.get("spec") or {}
    target_ref = spec.get("scaleTargetRef") or {}
    if not isinstance(target_ref, Mapping):
        raise InvalidInputError("spec.scaleTargetRef", "must be an object with a kind and a name")
    template = _template(target_ref, namespace, targets)
    pod_spec = template.get("spec") or {}
    where = f"spec.triggers[{index}].metadata"
    raw = _resolve_env({str(k): str(v) for k, v in metadata.items()}, target_ref, pod_spec, where)
    try:
        request = parse_metadata(name, namespace, raw)
    except MetadataError as e:
        raise InvalidInputError(e.path.replace("scalerMetadata", where, 1), e.problem, e.hint) from None
    tee, _ = pod_confidentiality(template)
    if request.tee is not None and request.tee.required and not tee.required:
        raise InvalidInputError(f"{where}.tee", f"{request.tee.describe()} is asked here but not by the pod template: "
                                "without a plan its pods carry no TEE demand the scheduler extender can enforce",
                                f"set the template's runtimeClassName (e.g. kata-qemu-tdx) or its {TEE_ANNOTATION} "
                                "annotation")
    if request.tee is not None and not _at_least(request.tee, tee):
        raise InvalidInputError(f"{where}.tee", f"{request.tee.describe()} is weaker than what the pod template's "
                                f"runtimeClassName {pod_spec.get('runtimeClassName')} needs ({tee.describe()})",
                                "its pods would be refused wherever the plan put them: drop `tee` or make it "
                                "at least as strict")
    min_r = _count(spec, "minReplicaCount", KEDA_MIN_REPLICAS)
    max_r = _count(spec, "maxReplicaCount", KEDA_MAX_REPLICAS)
    base = Workload(name=request.workload_name, namespace=request.workload_namespace, confidentiality=tee,
                    footprint=pod_request(pod_spec, overheads, "spec.template.spec"), min_replicas=min_r,
                    max_replicas=max_r, runtime_class=str(pod_spec.get("runtimeClassName") or ""),
                    placement=rules_from_pod_spec(admitted_pod_spec(pod_spec, scheduling, "spec.template.spec"),
                                                  "spec.template.spec"))
    build_workload(request, base, Demand())   # raises here, not in a plan, when the two disagree
    return request, base


def _template(target_ref: Mapping[str, Any], namespace: str,
              targets: Mapping[tuple[str, str, str], Mapping[str, Any]]) -> Mapping[str, Any]:
    api_version = target_ref.get("apiVersion") or TARGET_API_VERSION
    kind = target_ref.get("kind") or "Deployment"
    target_name = target_ref.get("name")
    if not target_name:
        raise InvalidInputError("spec.scaleTargetRef.name", "is required")
    if api_version != TARGET_API_VERSION or kind not in TARGET_KINDS:
        raise InvalidInputError("spec.scaleTargetRef", f"{kind} ({api_version}) is not supported",
                                "WattWise reads the pod template of an apps/v1 Deployment or StatefulSet")
    target = targets.get((kind, namespace, target_name))
    if target is None:
        raise InvalidInputError("spec.scaleTargetRef", f"{kind} {namespace}/{target_name} not found")
    template = (target.get("spec") or {}).get("template")
    if not isinstance(template, Mapping):
        raise InvalidInputError("spec.scaleTargetRef", f"{kind} {namespace}/{target_name} has no spec.template")
    return template


def _resolve_env(metadata: dict[str, str], target_ref: Mapping[str, Any], pod_spec: Mapping[str, Any],
                 where: str) -> dict[str, str]:
    """`xFromEnv: VAR` -> `xFromEnv: <VAR's value>`, as KEDA resolves it before calling a scaler."""
    keys = [k for k in metadata if k.endswith(FROM_ENV) and len(k) > len(FROM_ENV)]
    if not keys:
        return metadata
    containers = list(pod_spec.get("containers") or ())
    wanted = target_ref.get("envSourceContainerName")
    container = next((c for c in containers if c.get("name") == wanted), None) if wanted else \
        (containers[0] if containers else None)
    env = {e.get("name"): e for e in (container or {}).get("env") or () if isinstance(e, Mapping)}
    out = dict(metadata)
    for key in keys:
        var = env.get(metadata[key])
        if var is None or "value" not in var:
            shown = f"container {wanted}" if wanted else "first container"
            raise InvalidInputError(f"{where}.{key}", f"{metadata[key][:80]!r} is not an env variable with a value "
                                    f"in the scale target's {shown}",
                                    "values from ConfigMaps or Secrets are not read: give the value itself")
        out[key] = str(var["value"])
    return out


def _at_least(given: Confidentiality, needed: Confidentiality) -> bool:
    """Whether every node `given` allows also has what `needed` asks for."""
    if not needed.required:
        return True
    return given.required and all(any(n <= option for n in needed.any_of) for option in given.any_of)


def _count(spec: Mapping[str, Any], key: str, default: int) -> int:
    value = spec.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInputError(f"spec.{key}", f"not a replica count: {str(value)[:40]!r}")
    return value


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= REASON_CHARS else text[:REASON_CHARS] + "..."
