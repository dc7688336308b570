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
