"""The nodes a process watches (Kubernetes API JSON) as the planner's nodes and node classes.

- Each Node through the label mapping (`labels.node_from_k8s`: capabilities, TEE readiness,
  allocatable, cordon, `spec.taints`), its zone replaced by its GRID zone
  (`grid_zone.resolve_grid_zone`: label, the user's map, the bundled cloud-region map, else
  unmapped), each source reported.
- Each class's power curve from `power_source.choose_power_curve` (the catalogue, which includes
  the mapping's own classes; a SPECpower curve of the CPU generation NFD's vendor, family and model
  labels name; the Kepler fit; else the class's prior), each source reported.
- `reserved`: what every unfinished pod bound to the node (`spec.nodeName`) requests, overhead
  included (`spec.overhead`, or its RuntimeClass's `overhead.podFixed`), except WattWise's own
  replicas (labelled `wattwise.io/workload`), whose placement the planner decides afresh.
- A node, pod or RuntimeClass that cannot be read is left out and reported in `problems`, one line
  each; the rest are read as usual. Nodes that share a class name but not their hardware (an
  instance type with TDX enabled on some nodes only) get classes of their own: `name`, `name-2`, ...
- `tee_gaps`: Confidential Containers RuntimeClasses whose `scheduling.nodeSelector` does not keep
  their pods on nodes with their TEE (`labels.runtime_class_tee_gaps`), so nothing holds the TEE
  rule while the scheduler extender does not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, replace
from typing import Any

from wattwise.models.cluster import Node, NodeClass
from wattwise.models.errors import InvalidInputError
from wattwise.models.grid_zone import GridZone, resolve_grid_zone
from wattwise.models.labels import DEFAULT_MAPPING, MANAGED_LABEL, LabelMapping, node_from_k8s, runtime_class_tee_gaps
from wattwise.models.power_curve import PowerCurve
from wattwise.models.power_source import ChosenCurve, MeasuredCurve, choose_power_curve, cpu_generation
from wattwise.models.resources import Resources
from wattwise.models.room import reserved_on_node, runtime_class_overheads

PROBLEM_CHARS = 300   # the most of one error message a problem line quotes
UNREADABLE = (InvalidInputError, TypeError, ValueError, AttributeError, KeyError)


@dataclass(frozen=True)
class ClusterNodes:
    node_classes: Mapping[str, NodeClass]
    nodes: tuple[Node, ...]                   # by name
    curve_sources: Mapping[str, ChosenCurve]  # class name -> where its power curve came from
    zone_sources: Mapping[str, GridZone]      # node name -> its grid zone and where that came from
    runtime_overheads: Mapping[str, Resources]   # RuntimeClass name -> overhead.podFixed
    problems: tuple[str, ...]                 # one line per node, pod or RuntimeClass left out
    tee_gaps: tuple[str, ...] = ()            # CoCo RuntimeClasses whose node selector lacks their TEE


def cluster_nodes(nodes_json: Iterable[Mapping[str, Any]], pods_json: Iterable[Mapping[str, Any]],
                  runtime_classes_json: Iterable[Mapping[str, Any]], *, mapping: LabelMapping = DEFAULT_MAPPING,
                  user_zone_map: Mapping[str, str] | None = None, cloud_regions: Mapping[str, str] | None = None,
                  power_catalogue: Mapping[str, PowerCurve] | None = None,
                  measured_curves: tuple[MeasuredCurve, ...] = (),
                  fitted_curves: Mapping[str, PowerCurve] | None = None,
                  managed_workloads: Set[str] | None = None) -> ClusterNodes:
    """The planner's nodes and classes (see the module notes). `managed_workloads`: the keys
    (`namespace/name`) of the workloads being planned; a labelled pod of any other workload counts
    as another tenant's. None: every labelled pod is WattWise's."""
    problems: list[str] = []
    runtime_classes_json = tuple(runtime_classes_json)
    overheads = _overheads(runtime_classes_json, problems)
    read: list[tuple[Node, NodeClass, dict[str, str]]] = []
    for obj in sorted(nodes_json, key=_name):
        try:
            node, cls = node_from_k8s(obj, mapping)
        except UNREADABLE as e:
            problems.append(f"node {_name(obj) or '?'}: left out, cannot be read: {_clip(e)}")
            continue
        read.append((node, cls, dict(node.labels)))
    reserved, per_node = _reserved(pods_json, {n.name for n, _, _ in read}, overheads, managed_workloads, problems)

    catalogue = {**{name: c.power for name, c in mapping.classes.items()}, **(power_catalogue or {})}
    classes: dict[str, NodeClass] = {}
    sources: dict[str, ChosenCurve] = {}
    by_hardware: dict[NodeClass, str] = {}
    nodes, zones = [], {}
    for node, cls, labels in read:
        name = by_hardware.get(cls)
        if name is None:
            name = _free_name(cls.name, classes)
            if name != cls.name:
                problems.append(f"node {node.name}: its hardware differs from other nodes of class {cls.name} "
                                f"(cores, memory, GPUs or TEE kinds): its class is {name}")
            generation = cpu_generation(labels.get(mapping.vendor_label, ""), labels.get(mapping.family_label, ""),
                                        labels.get(mapping.model_id_label, ""))
            # the catalogue and the Kepler fits know the class by the name its nodes are labelled with
            chosen = choose_power_curve(cls.name, generation, cls.cores, catalogue, measured_curves,
                                        fitted_curves or {}, cls.power)
            classes[name] = replace(cls, name=name, power=chosen.curve)
            sources[name] = chosen
            by_hardware[cls] = name
        zone = resolve_grid_zone(labels, user_zone_map, cloud_regions)
        zones[node.name] = zone
        nodes.append(replace(node, node_class=name, zone=zone.zone, reserved=reserved.get(node.name, Resources()),
                             per_node_reserved=per_node.get(node.name, Resources())))
    return ClusterNodes(classes, tuple(nodes), sources, zones, overheads, tuple(problems),
                        tuple(runtime_class_tee_gaps(runtime_classes_json, mapping)))


def _overheads(runtime_classes: Iterable[Mapping[str, Any]], problems: list[str]) -> dict[str, Resources]:
    out: dict[str, Resources] = {}
    for rc in runtime_classes:
        try:
            out.update(runtime_class_overheads([rc]))
        except UNREADABLE as e:
            problems.append(f"RuntimeClass {_name(rc) or '?'}: overhead left out, cannot be read: {_clip(e)}")
    return out


def _reserved(pods: Iterable[Mapping[str, Any]], node_names: set[str], overheads: Mapping[str, Resources],
              managed: Set[str] | None, problems: list[str]) -> tuple[dict[str, Resources], dict[str, Resources]]:
    """Per node: what other tenants' pods reserve, and what pods that run on every node reserve
    (owned by a DaemonSet, or static pods owned by their Node): room taken, never a reason to
    keep the node on."""
    out: dict[str, Resources] = {}
    per_node: dict[str, Resources] = {}
    for pod in pods:
        try:
            node_name = (pod.get("spec") or {}).get("nodeName")
            if node_name not in node_names or _ours(pod, managed):
                continue
            into = per_node if _runs_on_every_node(pod) else out
            into[node_name] = into.get(node_name, Resources()) + reserved_on_node([pod], overheads)
        except UNREADABLE as e:
            meta = (pod.get("metadata") or {}) if isinstance(pod, Mapping) else {}
            problems.append(f"pod {meta.get('namespace', '')}/{meta.get('name', '?')}: its requests are left out "
                            f"of its node's free room, cannot be read: {_clip(e)}")
    return out, per_node


def _runs_on_every_node(pod: Mapping[str, Any]) -> bool:
    owners = (pod.get("metadata") or {}).get("ownerReferences") or ()
    return any(isinstance(o, Mapping) and o.get("controller") and o.get("kind") in ("DaemonSet", "Node")
               for o in owners)


def _ours(pod: Mapping[str, Any], managed: Set[str] | None) -> bool:
    meta = pod.get("metadata") or {}
    value = (meta.get("labels") or {}).get(MANAGED_LABEL)
    if not value:
        return False
    if managed is None:
        return True
    return (value if "/" in value else f"{meta.get('namespace') or 'default'}/{value}") in managed


def _free_name(name: str, taken: Mapping[str, Any]) -> str:
    if name not in taken:
        return name
    i = 2
    while f"{name}-{i}" in taken:
        i += 1
    return f"{name}-{i}"


def _name(obj: Any) -> str:
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    name = meta.get("name") if isinstance(meta, Mapping) else None
    return name if isinstance(name, str) else ""


def _clip(error: Exception) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= PROBLEM_CHARS else text[:PROBLEM_CHARS] + "..."
