"""Kubernetes objects (plain JSON dicts) to core values, through a mapping a user can override.

Node capabilities come from labels and resources published by Node Feature Discovery
(kubernetes-sigs/node-feature-discovery, docs/usage/features.md: cpu-security.*, cpu-cpuid.*),
the NodeFeatureRules kata-deploy installs for Confidential Containers (kata-containers/kata-containers,
tools/packaging/kata-deploy: intel.feature.node.kubernetes.io/tdx, tdx.intel.com/keys,
amd.feature.node.kubernetes.io/snp, sev-snp.amd.com/esids), NVIDIA GPU feature discovery
(NVIDIA/k8s-device-plugin, docs/gpu-feature-discovery/README.md: nvidia.com/gpu.*), NVIDIA's
k8s-cc-manager (nvidia.com/cc.*) and Intel's SGX device plugin (sgx.intel.com/epc); the zone from
Kubernetes' well-known topology.kubernetes.io/zone. A pod's confidentiality requirement comes from
its runtimeClassName, or WattWise's `wattwise.io/tee` annotation or label.
No Kubernetes client here: the adapters hand over `obj.to_dict()` or raw API JSON.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from wattwise.models.admission import taints_from_node
from wattwise.models.cluster import Node, NodeClass
from wattwise.models.errors import InvalidInputError
from wattwise.models.power_curve import PowerCurve
from wattwise.models.resources import Resources, parse_cpu_m, parse_memory_mib
from wattwise.models.tee import Confidentiality, TeeKind, confidentiality_from_runtime_class, parse_tee_list

NFD = "feature.node.kubernetes.io/"
TEE_ANNOTATION = "wattwise.io/tee"
MANAGED_LABEL = "wattwise.io/workload"
CLASS_LABEL = "wattwise.io/node-class"


@dataclass(frozen=True)
class LabelMapping:
    """Which labels and resources mean what. Override any field to match a cluster's conventions."""

    tee_labels: dict[TeeKind, tuple[str, ...]] = field(default_factory=lambda: {
        TeeKind.TDX: (NFD + "cpu-security.tdx.enabled", "intel.feature.node.kubernetes.io/tdx"),
        TeeKind.SEV_SNP: (NFD + "cpu-security.sev.snp.enabled", "amd.feature.node.kubernetes.io/snp"),
        TeeKind.SGX: (NFD + "cpu-security.sgx.enabled",),
    })
    # A TEE is ready when one of these is present: a Kata/CoCo rule label or a device-plugin
    # resource with allocatable > 0. With no readiness signal at all, a labelled TEE is not ready.
    tee_ready_labels: dict[TeeKind, tuple[str, ...]] = field(default_factory=lambda: {
        TeeKind.TDX: ("intel.feature.node.kubernetes.io/tdx",),
        TeeKind.SEV_SNP: ("amd.feature.node.kubernetes.io/snp",),
        TeeKind.SGX: (),
    })
    tee_ready_resources: dict[TeeKind, tuple[str, ...]] = field(default_factory=lambda: {
        TeeKind.TDX: ("tdx.intel.com/keys",),
        TeeKind.SEV_SNP: ("sev-snp.amd.com/esids",),
        TeeKind.SGX: ("sgx.intel.com/epc", "sgx.intel.com/enclave"),
    })
    amx_labels: tuple[str, ...] = (NFD + "cpu-cpuid.AMXTILE", NFD + "cpu-cpuid.AMXBF16", NFD + "cpu-cpuid.AMXINT8")
    vendor_label: str = NFD + "cpu-model.vendor_id"
    family_label: str = NFD + "cpu-model.family"
    model_id_label: str = NFD + "cpu-model.id"
    gpu_product_label: str = "nvidia.com/gpu.product"
    gpu_count_label: str = "nvidia.com/gpu.count"
    gpu_resources: tuple[str, ...] = ("nvidia.com/gpu", "nvidia.com/pgpu")
    cc_mode_label: str = "nvidia.com/cc.mode"
    cc_ready_label: str = "nvidia.com/cc.ready.state"
    zone_label: str = "topology.kubernetes.io/zone"
    instance_type_label: str = "node.kubernetes.io/instance-type"
    class_label: str = CLASS_LABEL
    # Known classes by name: power curves and timings the labels cannot tell.
    classes: dict[str, NodeClass] = field(default_factory=dict)


DEFAULT_MAPPING = LabelMapping()


def _truthy(value) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes", "on", "enabled")


def _count(value, path) -> int:
    """A device count ("8", "1.0"). Raises ValueError for text or a non-finite number, as for
    NaN: `int(float("1e400"))` would raise OverflowError, which no caller expects."""
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{path}: a count must be a finite number, got {str(value)[:40]!r}")
    return int(number)


def _quantity(value, parse, path) -> int:
    try:
        return parse(value, path)
    except InvalidInputError:
        return 0


def node_from_k8s(obj: Mapping[str, Any], mapping: LabelMapping = DEFAULT_MAPPING) -> tuple[Node, NodeClass]:
    """A Kubernetes Node (API JSON) to the planner's Node and its NodeClass (with `spec.taints`)."""
    meta = obj.get("metadata") or {}
    name = meta.get("name")
    if not name:
        raise InvalidInputError("metadata.name", "a Node needs a name")
    labels: dict[str, str] = dict(meta.get("labels") or {})
    status = obj.get("status") or {}
    alloc: dict[str, str] = dict(status.get("allocatable") or status.get("capacity") or {})
    capacity: dict[str, str] = dict(status.get("capacity") or alloc)

    tee_kinds, tee_ready = set(), set()
    for kind, keys in mapping.tee_labels.items():
        if any(_truthy(labels.get(k, "")) for k in keys):
            tee_kinds.add(kind)
            ready_by_label = any(_truthy(labels.get(k, "")) for k in mapping.tee_ready_labels.get(kind, ()))
            ready_by_resource = any(_quantity(alloc.get(r, "0"), _count, r) > 0
                                    for r in mapping.tee_ready_resources.get(kind, ()))
            if ready_by_label or ready_by_resource:
                tee_ready.add(kind)
    # the hardware (the class) from capacity or GPU feature discovery's count; what pods may use
    # now only from allocatable: unhealthy GPUs, or a device plugin not registered yet, leave
    # capacity (and the label) as they were and allocatable at 0
    gpu_count = max([_quantity(capacity.get(r, "0"), _count, r) for r in mapping.gpu_resources]
                    + [_quantity(labels.get(mapping.gpu_count_label, "0"), _count, "gpu")])
    gpu_allocatable = max([_quantity(alloc.get(r, "0"), _count, r) for r in mapping.gpu_resources])
    cc_mode = labels.get(mapping.cc_mode_label, "").lower()
    if gpu_count and cc_mode == "on":
        tee_kinds.add(TeeKind.NVIDIA_CC)
        if _truthy(labels.get(mapping.cc_ready_label, "")) or labels.get(mapping.cc_ready_label, "").lower() == "ready":
            tee_ready.add(TeeKind.NVIDIA_CC)
    amx = any(_truthy(labels.get(k, "")) for k in mapping.amx_labels)
    gpu_product = labels.get(mapping.gpu_product_label, "") if gpu_count else ""
    vendor = labels.get(mapping.vendor_label, "")

    class_name = labels.get(mapping.class_label) or labels.get(mapping.instance_type_label) or _derived_class_name(
        vendor, amx, gpu_product, gpu_count, tee_kinds)
    cores = max(1, parse_cpu_m(capacity.get("cpu", "1"), "status.capacity.cpu") // 1000)
    memory_gib = parse_memory_mib(capacity.get("memory", "0"), "status.capacity.memory") / 1024
    node_class = mapping.classes.get(class_name) or NodeClass(
        name=class_name, cpu_vendor=vendor or "unknown",
        cpu_model=f"family {labels.get(mapping.family_label, '?')} model {labels.get(mapping.model_id_label, '?')}",
        cores=cores, memory_gib=memory_gib, amx=amx, gpu_product=gpu_product, gpu_count=gpu_count,
        tee_kinds=frozenset(tee_kinds), power=default_power_curve(cores),
        gpu_idle_w=60.0 if gpu_count else 0.0, gpu_max_w=700.0 if gpu_count else 0.0)

    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    ready = conditions.get("Ready", "True") == "True"
    spec = obj.get("spec") or {}
    node = Node(
        name=name, node_class=node_class.name, zone=labels.get(mapping.zone_label, "default"),
        tee_ready=frozenset(tee_ready) if ready else frozenset(),
        allocatable=Resources(parse_cpu_m(alloc.get("cpu", "0"), "status.allocatable.cpu"),
                              parse_memory_mib(alloc.get("memory", "0"), "status.allocatable.memory"),
                              gpu_allocatable),
        powered_on=ready, schedulable=ready and not spec.get("unschedulable", False),
        labels=tuple(sorted(labels.items())), taints=taints_from_node(obj))
    return node, node_class


def _derived_class_name(vendor: str, amx: bool, gpu_product: str, gpu_count: int, tees) -> str:
    parts = [{"GenuineIntel": "intel", "AuthenticAMD": "amd"}.get(vendor, vendor.lower() or "cpu")]
    if amx:
        parts.append("amx")
    if gpu_count:
        parts.append(f"{gpu_count}x{gpu_product.lower() or 'gpu'}")
    parts += sorted(k.value for k in tees)
    return "-".join(parts)


def default_power_curve(cores: int) -> PowerCurve:
    """A typical modern two-socket server curve scaled by core count, until a real one is known."""
    shape = (0.30, 0.42, 0.50, 0.57, 0.63, 0.69, 0.75, 0.81, 0.87, 0.93, 1.0)
    peak_w = 150.0 + 4.0 * cores
    return PowerCurve(tuple(i / 10 for i in range(11)), tuple(s * peak_w for s in shape), sleep_w=0.03 * peak_w)


def pod_confidentiality(pod: Mapping[str, Any]) -> tuple[Confidentiality, bool]:
    """(requirement, is_coco) for a Pod's JSON.

    The runtime class wins when it is a Confidential Containers class; otherwise the
    `wattwise.io/tee` annotation or label (e.g. "tdx,sev-snp"). `is_coco` is True for any CoCo
    runtime class: such pods always get the TEE check, managed by WattWise or not.
    """
    spec = pod.get("spec") or {}
    meta = pod.get("metadata") or {}
    from_rc = confidentiality_from_runtime_class(spec.get("runtimeClassName"))
    explicit = (meta.get("annotations") or {}).get(TEE_ANNOTATION) or (meta.get("labels") or {}).get(TEE_ANNOTATION)
    if from_rc is not None:
        if from_rc.required or not explicit:
            return from_rc, True
        return parse_tee_list(explicit, f"metadata.annotations[{TEE_ANNOTATION}]"), True
    if explicit:
        return parse_tee_list(explicit, f"metadata.annotations[{TEE_ANNOTATION}]"), False
    return Confidentiality(), False


def pod_resources(pod: Mapping[str, Any]) -> Resources:
    """Sum of the containers' requests plus the runtime class's pod overhead."""
    spec = pod.get("spec") or {}
    total = Resources()
    for i, c in enumerate(spec.get("containers") or []):
        req = ((c.get("resources") or {}).get("requests")) or {}
        total = total + Resources(parse_cpu_m(req.get("cpu", "0"), f"spec.containers[{i}].resources.requests.cpu"),
                                  parse_memory_mib(req.get("memory", "0"), f"spec.containers[{i}].resources.requests.memory"),
                                  int(float(req.get("nvidia.com/gpu", 0) or 0)))
    overhead = spec.get("overhead") or {}
    if overhead:
        total = total + Resources(parse_cpu_m(overhead.get("cpu", "0")), parse_memory_mib(overhead.get("memory", "0")))
    return total


RUNTIME_CLASS_SELECTORS_DOC = "deploy/examples/runtimeclass-tee-selectors/"


def runtime_class_tee_gaps(runtime_classes: Iterable[Mapping[str, Any]],
                           mapping: LabelMapping = DEFAULT_MAPPING) -> list[str]:
    """One line per Confidential Containers RuntimeClass whose `scheduling.nodeSelector` does not
    keep its pods on nodes with its TEE: what holds the TEE rule when the scheduler extender does
    not (down, or skipped as `ignorable`). kata-deploy's classes select only
    `katacontainers.io/kata-runtime`, which TEE and non-TEE Kata nodes alike carry."""
    gaps = []
    for rc in runtime_classes:
        name = str((rc.get("metadata") or {}).get("name") or "")
        needed = confidentiality_from_runtime_class(name)
        if needed is None or not needed.required:
            continue
        selector = ((rc.get("scheduling") or {}).get("nodeSelector")) or {}
        missing = sorted({kind.value for option in needed.any_of for kind in option
                          if not _selects(kind, selector, mapping)})
        if missing or len(needed.any_of) > 1:
            gaps.append(f"RuntimeClass {name}: scheduling.nodeSelector does not select nodes with "
                        f"{' and '.join(missing) or needed.describe()}, so while the scheduler extender is down or "
                        f"skipped (ignorable) its pods can land on nodes without it; add the TEE's node label "
                        f"({RUNTIME_CLASS_SELECTORS_DOC})")
    return gaps


def _selects(kind: TeeKind, selector: Mapping[str, Any], mapping: LabelMapping) -> bool:
    if kind is TeeKind.NVIDIA_CC:
        return str(selector.get(mapping.cc_mode_label, "")).lower() == "on"
    labels = (*mapping.tee_ready_labels.get(kind, ()), *mapping.tee_labels.get(kind, ()))
    return any(_truthy(str(selector.get(k, ""))) for k in labels)
