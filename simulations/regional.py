"""Where the peers may serve a workload when the scenario has a network.

kube-scheduler knows nothing of where a pod's streams come from, and a Kubernetes cluster spans
the zones of one region: without WattWise, a region's cameras are served by that region's
cluster (or, in a cluster stretched across regions, pinned there with a nodeSelector on the
zone, to keep the latency bound). So every peer runs each workload only in its cameras' zone;
WattWise and the oracle may use any zone within the latency bound (`models.network`)."""

from __future__ import annotations

from dataclasses import replace

from wattwise.models.network import Reach
from wattwise.models.snapshot import Snapshot

RULE = "each workload served in its cameras' zone (a cluster per region: kube-scheduler has no notion of the streams' origin)"


def has_origins(snapshot: Snapshot) -> bool:
    return any(w.reach is not None for w in snapshot.workloads)


def served_at_home(snapshot: Snapshot) -> Snapshot:
    """The snapshot with each workload's reach cut to its own zone."""
    workloads = tuple(replace(w, reach=Reach(w.reach.origin_zone)) if w.reach is not None else w
                      for w in snapshot.workloads)
    return replace(snapshot, workloads=workloads)
