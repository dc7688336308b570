"""The Kubernetes objects the core reads in these tests (API JSON, as list calls return them).

Nodes: `tests/scheduler/data/nodes.json` plus `tests/data/kube/core-node-gpu-tainted.json` (an
L40S node tainted `nvidia.com/gpu=present:NoSchedule`, grid zone labelled). Pods, RuntimeClasses,
Deployments, StatefulSets and ScaledObjects: `tests/data/kube/core-*.json` (written by hand to the
shapes the API server returns; list items of built-in kinds carry no apiVersion/kind).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from wattwise.models.cluster_nodes import ClusterNodes, cluster_nodes
from wattwise.models.cluster_workloads import ClusterWorkloads, cluster_workloads
from wattwise.models.specpower import parse_specpower_curves

REPO = Path(__file__).resolve().parents[2]
KUBE = REPO / "tests" / "data" / "kube"
SCALER_ADDRESS = "wattwise-scaler.wattwise.svc.cluster.local:6000"


def _items(name: str) -> list[dict]:
    return json.loads((KUBE / name).read_text())["items"]


def nodes() -> list[dict]:
    recorded = json.loads((REPO / "tests" / "scheduler" / "data" / "nodes.json").read_text())["items"]
    return recorded + [json.loads((KUBE / "core-node-gpu-tainted.json").read_text())]


def pods() -> list[dict]:
    return _items("core-pods.json")


def runtime_classes() -> list[dict]:
    return _items("core-runtimeclasses.json")


def scaled_objects() -> list[dict]:
    return _items("core-scaledobjects.json")


def scaled_object(name: str) -> dict:
    return copy.deepcopy(next(so for so in scaled_objects() if so["metadata"]["name"] == name))


def targets() -> dict[tuple[str, str, str], dict]:
    out = {}
    for file, kind in (("core-deployments.json", "Deployment"), ("core-statefulsets.json", "StatefulSet")):
        for obj in _items(file):
            out[(kind, obj["metadata"]["namespace"], obj["metadata"]["name"])] = obj
    return out


MEASURED = parse_specpower_curves((REPO / "telemetry" / "data" / "specpower_curves.csv").read_text())
CLOUD_REGIONS = {"eu-central-1": "DE", "us-west-1": "US-CAL-CISO", "eu-north-1": "SE-SE3"}


def is_ours(address: str) -> bool:
    return address == SCALER_ADDRESS


def read_nodes(node_objs=None, pod_objs=None, **kw) -> ClusterNodes:
    kw.setdefault("cloud_regions", CLOUD_REGIONS)
    kw.setdefault("measured_curves", MEASURED)
    return cluster_nodes(nodes() if node_objs is None else node_objs, pods() if pod_objs is None else pod_objs,
                         runtime_classes(), **kw)


def read_workloads(objs=None, overheads=None) -> ClusterWorkloads:
    if overheads is None:
        overheads = read_nodes().runtime_overheads
    return cluster_workloads(scaled_objects() if objs is None else objs, targets(), overheads, is_ours=is_ours)
