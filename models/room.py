"""What a pod reserves on its node, and what is left: the free room the planner and the filter use.

A pod's effective request follows Kubernetes' scheduler (noderesources `computePodResourceRequest`):
the larger of (the app containers plus restartable init containers, i.e. sidecars) and each
plain init container's own request plus the sidecars started before it; then the pod overhead,
which the RuntimeClass admission controller copies into `spec.overhead` from the RuntimeClass's
`overhead.podFixed` (Kata pods: the VM's own CPU and memory). A pod template has no
`spec.overhead` yet, so its RuntimeClass's is added instead. A container's request defaults to
its limit when only the limit is set (API defaulting); GPUs are usually given as limits.
Free room is allocatable minus every pod bound to the node that has not finished, whoever owns it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from wattwise.models.errors import InvalidInputError
from wattwise.models.resources import Resources, parse_cpu_m, parse_memory_mib

GPU_RESOURCES = ("nvidia.com/gpu", "nvidia.com/pgpu")
FINISHED_PHASES = ("Succeeded", "Failed")


def _quantities(q: Mapping[str, Any], path: str) -> Resources:
    gpu = 0
    for name in GPU_RESOURCES:
        if name in q:
            try:
                gpu += int(float(q[name]))
            except (TypeError, ValueError):
                raise InvalidInputError(f"{path}.{name}", f"not a device count: {str(q[name])[:40]!r}") from None
    return Resources(parse_cpu_m(q["cpu"], f"{path}.cpu") if "cpu" in q else 0,
                     parse_memory_mib(q["memory"], f"{path}.memory") if "memory" in q else 0, gpu)


def container_request(container: Mapping[str, Any], path: str) -> Resources:
    res = container.get("resources") or {}
    limits = res.get("limits") or {}
    requests = {**limits, **(res.get("requests") or {})}   # a request defaults to the limit
    return _quantities(requests, f"{path}.resources.requests")


def _max(a: Resources, b: Resources) -> Resources:
    return Resources(max(a.cpu_m, b.cpu_m), max(a.memory_mib, b.memory_mib), max(a.gpu, b.gpu))


def runtime_class_overheads(runtime_classes: Iterable[Mapping[str, Any]]) -> dict[str, Resources]:
    """`overhead.podFixed` of node.k8s.io/v1 RuntimeClass objects (API JSON), by name."""
    out = {}
    for rc in runtime_classes:
        name = (rc.get("metadata") or {}).get("name")
        fixed = (rc.get("overhead") or {}).get("podFixed")
        if name and fixed:
            out[name] = _quantities(fixed, f"RuntimeClass {name}: overhead.podFixed")
    return out


def pod_request(spec: Mapping[str, Any], overheads: Mapping[str, Resources] | None = None,
                path: str = "spec") -> Resources:
    """The effective request of a pod spec (a bound pod's or a template's), overhead included."""
    app = Resources()
    for i, c in enumerate(spec.get("containers") or ()):
        app = app + container_request(c, f"{path}.containers[{i}]")
    sidecars, init_peak = Resources(), Resources()
    for i, c in enumerate(spec.get("initContainers") or ()):
        request = container_request(c, f"{path}.initContainers[{i}]")
        if c.get("restartPolicy") == "Always":
            sidecars = sidecars + request
            init_peak = _max(init_peak, sidecars)
        else:
            init_peak = _max(init_peak, sidecars + request)
    total = _max(app + sidecars, init_peak)
    if spec.get("overhead"):
        return total + _quantities(spec["overhead"], f"{path}.overhead")
    return total + (overheads or {}).get(spec.get("runtimeClassName") or "", Resources())


def reserved_on_node(pods: Iterable[Mapping[str, Any]], overheads: Mapping[str, Resources] | None = None) -> Resources:
    """What the pods bound to one node (API JSON) reserve, finished pods left out."""
    total = Resources()
    for pod in pods:
        if (pod.get("status") or {}).get("phase") in FINISHED_PHASES:
            continue
        meta = pod.get("metadata") or {}
        total = total + pod_request(pod.get("spec") or {}, overheads,
                                    f"pod {meta.get('namespace', '')}/{meta.get('name', '?')}: spec")
    return total
