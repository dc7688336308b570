"""The planner's inputs read from the cluster: nodes and workloads, through the core's pure
`cluster_nodes` and `cluster_workloads` over the stores one `KubeCluster` keeps.

`ClusterInventory` is the refresher's `NodeInventory` port and `ClusterWorkloadSource` its source
of workloads, live; the scenario file's are their replay counterparts. Each recomputes only when
a store it reads has changed (store versions), so a refresh with nothing new costs nothing.
"""

from __future__ import annotations

import logging
import threading
from types import MappingProxyType
from collections.abc import Callable, Mapping
from typing import Any

from wattwise.kube.cluster import KubeCluster
from wattwise.models.admission import runtime_class_scheduling
from wattwise.models.cluster import Node, NodeClass
from wattwise.models.cluster_nodes import ClusterNodes, cluster_nodes
from wattwise.models.cluster_workloads import ClusterWorkloads, cluster_workloads
from wattwise.models.errors import InvalidInputError
from wattwise.models.labels import DEFAULT_MAPPING, LabelMapping
from wattwise.models.power_curve import PowerCurve
from wattwise.models.power_source import MeasuredCurve
from wattwise.models.room import runtime_class_overheads

log = logging.getLogger(__name__)

DEFAULT_SCALER_SERVICE = "wattwise-scaler"
NO_CURVES: Mapping[str, PowerCurve] = MappingProxyType({})   # one object: the cache key stays the same


class NotSynced(RuntimeError):
    """A store has not been listed yet (the API server has not answered, or RBAC forbids it)."""


def scaler_address_matcher(service: str, namespace: str | None = None) -> Callable[[str], bool]:
    """Whether a trigger's `scalerAddress` names our Service: `service:port` or
    `service.<namespace>[.svc[.<cluster domain>]]:port` (KEDA dials it as given). With our
    `namespace` known, the same Service name in another namespace (a second installation) is not
    ours; without it, any namespace matches."""
    def is_ours(address: str) -> bool:
        host = address.strip().rsplit(":", 1)[0] if ":" in address else address.strip()
        if host == service:
            return True
        if not host.startswith(service + "."):
            return False
        return namespace is None or host.split(".")[1] == namespace
    return is_ours


class ClusterInventory:
    """`NodeInventory` over the cluster's Nodes, Pods and RuntimeClasses."""

    def __init__(self, cluster: KubeCluster, *, mapping: LabelMapping = DEFAULT_MAPPING,
                 user_zone_map: Mapping[str, str] | None = None, cloud_regions: Mapping[str, str] | None = None,
                 power_catalogue: Mapping[str, PowerCurve] | None = None,
                 measured_curves: tuple[MeasuredCurve, ...] = (),
                 fitted_curves: Callable[[], Mapping[str, PowerCurve]] | None = None,
                 managed_workloads: Callable[[], frozenset[str]] | None = None):
        """`fitted_curves`: node power curves fitted from Kepler (the energy models' node_power),
        read at each refresh; `managed_workloads`: the keys of the workloads being planned (their
        pods are placed by the plan, not counted as another tenant's)."""
        self._cluster = cluster
        self._kwargs: dict[str, Any] = dict(mapping=mapping, user_zone_map=user_zone_map, cloud_regions=cloud_regions,
                                            power_catalogue=power_catalogue, measured_curves=measured_curves)
        self._fitted = fitted_curves or (lambda: NO_CURVES)
        self._managed = managed_workloads
        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._result: ClusterNodes | None = None
        self._reported: tuple[str, ...] = ()

    def current(self) -> ClusterNodes:
        c = self._cluster
        if not c.nodes.synced:
            raise NotSynced(f"nodes not listed from the API server yet ({c.nodes.status()})")
        fitted = self._fitted()
        managed = self._managed() if self._managed is not None else None
        key = (c.nodes.version, c.pods.version, c.runtime_classes.version, id(fitted), managed)
        with self._lock:
            if key != self._key or self._result is None:
                self._result = cluster_nodes(c.nodes.items(), c.pods.items(), c.runtime_classes.items(),
                                             fitted_curves=fitted, managed_workloads=managed, **self._kwargs)
                self._key = key
                said = self._result.problems + self._result.tee_gaps
                if said != self._reported:
                    for problem in said:
                        log.warning("cluster nodes: %s", problem)
                    self._reported = said
            return self._result

    def node_classes(self) -> dict[str, NodeClass]:
        return dict(self.current().node_classes)

    def stale_reason(self) -> str:
        """Why what the inventory is read from may be out of date (a store whose list or watch is
        failing now: the API server unreachable, restarting or refusing), else ''. The refresher
        reports it as a degraded reason; it clears when the store is listed again."""
        c = self._cluster
        failing = [f"{s.what}: {s.last_error}" for s in (c.nodes, c.pods, c.runtime_classes) if s.last_error]
        if not failing:
            return ""
        return f"Kubernetes API failing ({'; '.join(failing)}); planning with the nodes and pods last listed"

    def nodes(self) -> list[Node]:
        return list(self.current().nodes)

    def describe(self) -> str:
        result = self._result
        if result is None:
            return "the Kubernetes API (not read yet)"
        by_source: dict[str, int] = {}
        for chosen in result.curve_sources.values():
            by_source[chosen.source.value] = by_source.get(chosen.source.value, 0) + 1
        curves = ", ".join(f"{n} from {s}" for s, n in sorted(by_source.items()))
        unmapped = sum(1 for z in result.zone_sources.values() if z.source.value == "unmapped")
        gaps = f"; {'; '.join(result.tee_gaps)}" if result.tee_gaps else ""
        return (f"{len(result.nodes)} nodes of {len(result.node_classes)} classes from the Kubernetes API "
                f"(power curves: {curves or 'none'}; {unmapped} node(s) in no known grid zone{gaps})")


class ClusterWorkloadSource:
    """The workloads the cluster's ScaledObjects ask this scaler for, with their pod templates."""

    def __init__(self, cluster: KubeCluster, is_ours: Callable[[str], bool]):
        self._cluster = cluster
        self._is_ours = is_ours
        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._result = ClusterWorkloads((), {}, ())
        self._reported: tuple[tuple[str, str], ...] = ()

    @property
    def synced(self) -> bool:
        c = self._cluster
        return c.scaled_objects.synced and c.deployments.synced and c.stateful_sets.synced

    def subscribe(self, fn: Callable[[], None]) -> None:
        """`fn()` after any change to what the workloads are read from (on a watch thread)."""
        c = self._cluster
        for store in (c.scaled_objects, c.deployments, c.stateful_sets, c.runtime_classes):
            store.subscribe(lambda _change: fn())

    def current(self) -> ClusterWorkloads:
        c = self._cluster
        # spec versions: the templates and triggers read here, not the status updates a busy cluster
        # makes of them every second (each rebuild reads every ScaledObject, on the gRPC event loop)
        key = (c.scaled_objects.spec_version, c.deployments.spec_version, c.stateful_sets.spec_version,
               c.runtime_classes.spec_version)
        with self._lock:
            if key != self._key:
                targets: dict[tuple[str, str, str], dict] = {}
                for kind, store in (("Deployment", c.deployments), ("StatefulSet", c.stateful_sets)):
                    for obj in store.items():
                        meta = obj.get("metadata") or {}
                        targets[(kind, str(meta.get("namespace") or ""), str(meta.get("name") or ""))] = obj
                overheads = _overheads(c.runtime_classes.items())
                scheduling = runtime_class_scheduling(c.runtime_classes.items())
                self._result = cluster_workloads(c.scaled_objects.items(), targets, overheads, is_ours=self._is_ours,
                                                 runtime_scheduling=scheduling)
                self._key = key
                if self._result.left_out != self._reported:
                    for where, why in self._result.left_out:
                        log.warning("ScaledObject %s left out: %s", where, why)
                    self._reported = self._result.left_out
            return self._result


def _overheads(runtime_classes) -> dict:
    """RuntimeClass overheads; one that cannot be read is skipped (ClusterInventory reports it)."""
    out: dict = {}
    for rc in runtime_classes:
        try:
            out.update(runtime_class_overheads([rc]))
        except (InvalidInputError, TypeError, AttributeError):
            continue
    return out
