"""Shared helpers for the extender tests: recorded objects, a kube-scheduler-shaped HTTP client."""

from __future__ import annotations

import copy
import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "scenarios" / "metro-retail.yaml"


def recorded_node_list() -> dict:
    return json.loads((DATA / "nodes.json").read_text())


def recorded_pods() -> dict[str, dict]:
    return json.loads((DATA / "pods.json").read_text())


def node_names() -> list[str]:
    return [n["metadata"]["name"] for n in recorded_node_list()["items"]]


def args_names(pod: dict, names: list[str], lower: bool = False) -> dict:
    """ExtenderArgs as kube-scheduler sends them with nodeCacheCapable: true."""
    if lower:
        return {"pod": pod, "nodes": None, "nodenames": names}
    return {"Pod": pod, "Nodes": None, "NodeNames": names}


def args_nodes(pod: dict, node_list: dict, lower: bool = False) -> dict:
    """ExtenderArgs with nodeCacheCapable: false: the full NodeList."""
    if lower:
        return {"pod": pod, "nodes": copy.deepcopy(node_list), "nodenames": None}
    return {"Pod": pod, "Nodes": copy.deepcopy(node_list), "NodeNames": None}


def post(url: str, doc=None, raw: bytes | None = None, context: ssl.SSLContext | None = None,
         timeout_s: float = 10.0) -> tuple[int, object]:
    body = raw if raw is not None else json.dumps(doc).encode()
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s, context=context) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        text = e.read()
        try:
            return e.code, json.loads(text)
        except ValueError:
            return e.code, text.decode(errors="replace")


def get(url: str, context: ssl.SSLContext | None = None) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10, context=context) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def passed_names(reply: dict) -> list[str]:
    """The feasible nodes of an ExtenderFilterResult in either form."""
    if reply.get("NodeNames") is not None:
        return list(reply["NodeNames"])
    return [n["metadata"]["name"] for n in (reply.get("Nodes") or {}).get("items") or []]


def running_pod(pod: dict, name: str, node: str, ready: bool = True, resource_version: str = "1000",
                annotations: dict | None = None) -> dict:
    """A recorded pending pod as it looks once bound and started (the status shape the API server
    sends for a running pod; containers not ready yet while `ready` is False, e.g. attesting)."""
    p = copy.deepcopy(pod)
    meta = p["metadata"]
    meta["name"] = name
    meta["resourceVersion"] = resource_version
    if annotations:
        meta.setdefault("annotations", {}).update(annotations)
    p["spec"]["nodeName"] = node
    t = "2025-06-12T09:41:10Z"
    flag = "True" if ready else "False"
    not_ready = {} if ready else {"reason": "ContainersNotReady",
                                  "message": "containers with unready status: [inference]"}
    p["status"] = {
        "conditions": [
            {"lastProbeTime": None, "lastTransitionTime": t, "status": "True", "type": "PodReadyToStartContainers"},
            {"lastProbeTime": None, "lastTransitionTime": t, "status": "True", "type": "Initialized"},
            {"lastProbeTime": None, "lastTransitionTime": t, "status": flag, "type": "Ready", **not_ready},
            {"lastProbeTime": None, "lastTransitionTime": t, "status": flag, "type": "ContainersReady", **not_ready},
            {"lastProbeTime": None, "lastTransitionTime": t, "status": "True", "type": "PodScheduled"},
        ],
        "containerStatuses": [{
            "containerID": "containerd://5b0f3c1e9a7d4e2f8c6b1a3d5e7f9a0b2c4d6e8f0a1b3c5d7e9f1a2b3c4d5e6f",
            "image": p["spec"]["containers"][0]["image"], "imageID": "", "lastState": {},
            "name": p["spec"]["containers"][0]["name"], "ready": ready, "restartCount": 0, "started": True,
            "state": {"running": {"startedAt": t}}}],
        "hostIP": "10.20.1.12", "hostIPs": [{"ip": "10.20.1.12"}], "phase": "Running",
        "podIP": "10.244.3.17", "podIPs": [{"ip": "10.244.3.17"}], "qosClass": "Guaranteed",
        "startTime": "2025-06-12T09:41:02Z",
    }
    return p
