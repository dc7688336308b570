"""The kube-scheduler extender wire format (k8s.io/kube-scheduler/extender/v1), exactly.

Requests: ExtenderArgs {Pod, Nodes (NodeList, nodeCacheCapable false) | NodeNames (nodeCacheCapable
true)} and ExtenderPreemptionArgs {Pod, NodeNameToVictims | NodeNameToMetaVictims}. The v1 types
carry no json tags, so current kube-scheduler sends the Go field names (`Pod`, `NodeNames`); old
releases and many examples send lower-case keys. Go decodes case-insensitively, and so do we.
Replies use the documented capitalised names. A wrong shape raises `BadRequest` (HTTP 400) naming
the field; a message quotes at most a short prefix of a value it refuses (`quote`), never the value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

try:  # optional: see set_json_backend
    import orjson
except ImportError:  # pragma: no cover - depends on the environment
    orjson = None

_use_orjson = orjson is not None


class BadRequest(ValueError):
    """The request is malformed; sending it again never helps. The message names the field."""


def set_json_backend(name: str) -> str:
    """"orjson" (when installed) or "stdlib"; returns the backend in use. orjson is used when
    importable: the benchmark measures both (benchmarks/extender_bench.py --json)."""
    global _use_orjson
    if name not in ("orjson", "stdlib"):
        raise ValueError(f"unknown JSON backend {name!r}: use orjson or stdlib")
    _use_orjson = name == "orjson" and orjson is not None
    return "orjson" if _use_orjson else "stdlib"


# The deepest nesting the JSON writer can write: orjson writes at most 254 levels. A reply echoes
# parts of its request at the depth they came (full NodeLists, MetaVictims), so a request nested
# deeper than that is refused as a whole, whatever the verb and mode.
MAX_DEPTH = 254
QUOTE_CHARS = 40   # at most this much of a refused value is quoted


def decode(body: bytes) -> Any:
    """The request's JSON, no deeper than MAX_DEPTH (else BadRequest naming where)."""
    if not body:
        raise BadRequest("empty request body: expected a JSON object")
    try:
        doc = orjson.loads(body) if _use_orjson else json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadRequest(f"request body is not valid JSON: {quote(str(e), 120, repr_=False)}") from None
    except RecursionError:
        raise BadRequest("request body is nested too deep to decode") from None
    if _use_orjson:
        try:
            orjson.dumps(doc)   # the writer itself is the check, in a fraction of the decoding's time
            return doc
        except TypeError:   # "Recursion limit reached" (too_deep says where)
            pass
    path = too_deep(doc, MAX_DEPTH)
    if path is not None:
        raise BadRequest(f"{path}: nested more than {MAX_DEPTH} levels deep (more than a reply can carry)")
    return doc


def encode(doc: Any) -> bytes:
    if _use_orjson:
        return orjson.dumps(doc)
    return json.dumps(doc, separators=(",", ":")).encode()


def too_deep(doc: Any, limit: int) -> str | None:
    """Where `doc` first nests deeper than `limit` levels (its path, the first 6 steps), or None.
    A walk in Python: with orjson it only runs once the writer has refused a document."""
    stack = [(doc, 0, ())]
    while stack:
        value, depth, path = stack.pop()
        if isinstance(value, dict):
            children = value.items()
        elif isinstance(value, list):
            children = enumerate(value)
        else:
            continue
        if depth >= limit:
            return _path(path)
        for key, child in children:
            stack.append((child, depth + 1, (*path, key) if len(path) < 6 else path))
    return None


def _path(parts: tuple) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + quote(part, repr_=False)
    return (out or "(the request)") + ("..." if len(parts) >= 6 else "")


def quote(value: Any, limit: int = QUOTE_CHARS, repr_: bool = True) -> str:
    """A refused value for a message: at most `limit` characters of it, marked when cut."""
    text = value if isinstance(value, str) else str(value)
    cut = text[:limit] + "..." if len(text) > limit else text
    return repr(cut) if repr_ else cut


def _field(doc: Mapping, name: str) -> Any:
    """`doc[name]` matched like Go's encoding/json: exact name first, then any letter case."""
    if name in doc:
        return doc[name]
    lower = name.lower()
    for k, v in doc.items():
        if isinstance(k, str) and k.lower() == lower:
            return v
    return None


@dataclass
class ExtenderArgs:
    pod: dict
    node_names: list[str] | None = None   # nodeCacheCapable: true
    node_list: dict | None = None         # nodeCacheCapable: false (the NodeList as sent)

    @property
    def names(self) -> list[str]:
        if self.node_names is not None:
            return self.node_names
        return [item["metadata"]["name"] for item in self.node_list.get("items") or ()]


def _check_pod(pod: Any, where: str) -> dict:
    if pod is None:
        raise BadRequest(f"{where}: missing (the pod to schedule)")
    if not isinstance(pod, dict):
        raise BadRequest(f"{where}: must be a Pod object, got {type(pod).__name__}")
    for key in ("metadata", "spec"):
        if pod.get(key) is not None and not isinstance(pod[key], dict):
            raise BadRequest(f"{where}.{key}: must be an object")
    meta = pod.get("metadata") or {}
    for key in ("labels", "annotations"):
        value = meta.get(key)
        if value is not None and not (isinstance(value, dict) and all(isinstance(v, str) for v in value.values())):
            raise BadRequest(f"{where}.metadata.{key}: must be an object of strings")
    rc = (pod.get("spec") or {}).get("runtimeClassName")
    if rc is not None and not isinstance(rc, str):
        raise BadRequest(f"{where}.spec.runtimeClassName: must be a string")
    return pod


def _check_node_list(nodes: Any) -> dict:
    """A NodeList whose items have what the extender reads in the shape Kubernetes gives it."""
    if not isinstance(nodes, dict):
        raise BadRequest(f"Nodes: must be a NodeList object with items, got {type(nodes).__name__}")
    items = nodes.get("items")
    if items is None:
        return nodes
    if not isinstance(items, list):
        raise BadRequest("Nodes.items: must be a list of Node objects")
    for i, item in enumerate(items):
        meta = item.get("metadata") if isinstance(item, dict) else None
        if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
            raise BadRequest(f"Nodes.items[{i}].metadata.name: every Node needs a name")
        spec, status = item.get("spec"), item.get("status")
        if spec is not None and not isinstance(spec, dict):
            raise BadRequest(f"Nodes.items[{i}].spec: must be an object, got {type(spec).__name__}")
        if status is not None:
            if not isinstance(status, dict):
                raise BadRequest(f"Nodes.items[{i}].status: must be an object, got {type(status).__name__}")
            conditions = status.get("conditions")
            if conditions is not None and not (isinstance(conditions, list)
                                               and all(isinstance(c, dict) for c in conditions)):
                raise BadRequest(f"Nodes.items[{i}].status.conditions: must be a list of objects")
    return nodes


def parse_extender_args(doc: Any) -> ExtenderArgs:
    if not isinstance(doc, dict):
        raise BadRequest(f"ExtenderArgs must be a JSON object, got {type(doc).__name__}")
    pod = _check_pod(_field(doc, "Pod"), "Pod")
    names = _field(doc, "NodeNames")
    nodes = _field(doc, "Nodes")
    if names is not None and nodes is not None:
        raise BadRequest("give either NodeNames (nodeCacheCapable: true) or Nodes (nodeCacheCapable: false), not both")
    if names is not None:
        return ExtenderArgs(pod, node_names=_check_names(names))
    if nodes is not None:
        return ExtenderArgs(pod, node_list=_check_node_list(nodes))
    raise BadRequest("neither NodeNames (nodeCacheCapable: true) nor Nodes (nodeCacheCapable: false) given")


def _check_names(names: Any) -> list[str]:
    """NodeNames must be a list of strings: checked by one `str.join` (a loop over 5,000 names in
    Python costs several times as much)."""
    if isinstance(names, list):
        try:
            "".join(names)
        except TypeError:
            pass
        else:
            return names
    raise BadRequest("NodeNames: must be a list of node names (strings)")


def filter_result(args: ExtenderArgs, passed: list[str], failed: Mapping[str, str],
                  unresolvable: Mapping[str, str], error: str = "") -> dict:
    """ExtenderFilterResult in the same form as the request: names in, names out; NodeList in,
    NodeList out (a reply holding only NodeNames would filter out every node)."""
    out: dict[str, Any] = {"FailedNodes": failed, "FailedAndUnresolvableNodes": unresolvable, "Error": error}
    if args.node_names is not None:
        out["NodeNames"] = passed
        out["Nodes"] = None
    else:
        keep = set(passed)
        items = [item for item in args.node_list.get("items") or () if item["metadata"]["name"] in keep]
        out["Nodes"] = {**args.node_list, "items": items}
        out["NodeNames"] = None
    return out


def passthrough_filter_result(args: ExtenderArgs) -> dict:
    if args.node_names is not None:
        return {"NodeNames": args.node_names, "Nodes": None, "FailedNodes": {},
                "FailedAndUnresolvableNodes": {}, "Error": ""}
    return {"Nodes": args.node_list, "NodeNames": None, "FailedNodes": {},
            "FailedAndUnresolvableNodes": {}, "Error": ""}


def host_priority_list(scores: Mapping[str, int]) -> list[dict]:
    return [{"Host": name, "Score": score} for name, score in scores.items()]


@dataclass
class PreemptionArgs:
    pod: dict
    meta_victims: dict[str, dict]   # node name -> MetaVictims {Pods: [{UID}], NumPDBViolations}


def parse_preemption_args(doc: Any) -> PreemptionArgs:
    """ExtenderPreemptionArgs; full Victims (nodeCacheCapable false) are reduced to MetaVictims,
    the only form the reply can carry."""
    if not isinstance(doc, dict):
        raise BadRequest(f"ExtenderPreemptionArgs must be a JSON object, got {type(doc).__name__}")
    pod = _check_pod(_field(doc, "Pod"), "Pod")
    meta = _field(doc, "NodeNameToMetaVictims")
    full = _field(doc, "NodeNameToVictims")
    if meta is not None:
        where = "NodeNameToMetaVictims"
        victims_by_node = _check_victims_map(meta, where, "MetaVictims")
        return PreemptionArgs(pod, {node: {"Pods": _meta_pods(victims, f"{where}.{quote(node)}"),
                                           "NumPDBViolations": _pdb_violations(victims, f"{where}.{quote(node)}")}
                                    for node, victims in victims_by_node.items()})
    if full is not None:
        where = "NodeNameToVictims"
        victims_by_node = _check_victims_map(full, where, "Victims")
        return PreemptionArgs(pod, {node: {"Pods": _victim_uids(victims, f"{where}.{quote(node)}"),
                                           "NumPDBViolations": _pdb_violations(victims, f"{where}.{quote(node)}")}
                                    for node, victims in victims_by_node.items()})
    return PreemptionArgs(pod, {})


def _check_victims_map(value: Any, where: str, kind: str) -> dict[str, dict]:
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise BadRequest(f"{where}: must map node names to {kind} objects")
    return value


def _pods_list(victims: dict, where: str) -> list:
    pods = _field(victims, "Pods")
    if pods is None:
        return []
    if not isinstance(pods, list) or not all(isinstance(p, dict) for p in pods):
        raise BadRequest(f"{where}.Pods: must be a list of objects")
    return pods


def _meta_pods(victims: dict, where: str) -> list[dict]:
    pods = _pods_list(victims, where)
    for i, p in enumerate(pods):
        uid = _field(p, "UID")
        if uid is not None and not isinstance(uid, str):
            raise BadRequest(f"{where}.Pods[{i}].UID: must be a string")
    return pods


def _victim_uids(victims: dict, where: str) -> list[dict]:
    uids = []
    for i, p in enumerate(_pods_list(victims, where)):
        meta = p.get("metadata")
        if meta is None:
            meta = {}
        elif not isinstance(meta, dict):
            raise BadRequest(f"{where}.Pods[{i}].metadata: must be an object, got {type(meta).__name__}")
        uid = meta.get("uid", "")
        if not isinstance(uid, str):
            raise BadRequest(f"{where}.Pods[{i}].metadata.uid: must be a string")
        uids.append({"UID": uid})
    return uids


def _pdb_violations(victims: dict, where: str) -> int:
    n = _field(victims, "NumPDBViolations")
    if n is None:
        return 0
    if not isinstance(n, int) or isinstance(n, bool):
        raise BadRequest(f"{where}.NumPDBViolations: must be an integer")
    return n


def preemption_result(meta_victims: Mapping[str, dict]) -> dict:
    return {"NodeNameToMetaVictims": dict(meta_victims)}
