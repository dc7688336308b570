"""Running WattWise replicas per workload and node, for the extender's "prefer the class the plan
is short of" (`by_node`).

Live: `wattwise.kube.workload_pods.WorkloadPods`, the process's one view of WattWise's pods over
its one pods store (`KubeCluster.workload_pods()`), which the scaler's surge and the
pod-deletion-cost reconciler read too; tests and the benchmark: `StaticReplicaCounts`.
"""

from __future__ import annotations

from typing import Mapping, Protocol, runtime_checkable

from wattwise.kube.workload_pods import PodRecord, WorkloadPods

__all__ = ["KubeReplicaCounts", "PodRecord", "ReplicaCounts", "StaticReplicaCounts"]

# The live ReplicaCounts (by_node), and the pods the deletion-cost reconciler reads (pods(), known).
KubeReplicaCounts = WorkloadPods


@runtime_checkable
class ReplicaCounts(Protocol):
    def by_node(self, workload_key: str) -> Mapping[str, int]: ...


class StaticReplicaCounts:
    def __init__(self, counts: Mapping[str, Mapping[str, int]]):
        self._counts = {k: dict(v) for k, v in counts.items()}

    def by_node(self, workload_key: str) -> Mapping[str, int]:
        return self._counts.get(workload_key, {})
