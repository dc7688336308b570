"""The kube-scheduler extender wire format (k8s.io/kube-scheduler/extender/v1), exactly.

Requests: ExtenderArgs {Pod, Nodes (NodeList, nodeCacheCapable false) | NodeNames (nodeCacheCapable
true)} and ExtenderPreemptionArgs {Pod, NodeNameToVictims | NodeNameToMetaVictims}. The v1 types
carry no json tags, so current kube-scheduler sends the Go field names (`Pod`, `NodeNames`); old
releases and many examples send lower-case keys. Go decodes case-insensitively, and so do we.
Replies use the documented capitalised names. A wrong shape raises `BadRequest` (HTTP 400) naming
the field.
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


def decode(body: bytes) -> Any:
    if not body:
        raise BadRequest("empty request body: expected a JSON object")
    try:
        return orjson.loads(body) if _use_orjson else json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadRequest(f"request body is not valid JSON: {e}") from None


def encode(doc: Any) -> bytes:
    if _use_orjson:
        return orjson.dumps(doc)
    return json.dumps(doc, separators=(",", ":")).encode()


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
    names_key: str | tuple | None = None  # node_names as one exact, cheaply hashed value (see _names_key)

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
        return ExtenderArgs(pod, node_names=names, names_key=_names_key(names))
    if nodes is not None:
        return ExtenderArgs(pod, node_list=_check_node_list(nodes))
    raise BadRequest("neither NodeNames (nodeCacheCapable: true) nor Nodes (nodeCacheCapable: false) given")


def _names_key(names: Any) -> str | tuple:
    """Check that NodeNames is a list of strings, and return it as one value that is cheap to hash
    and to compare exactly: the reply cache's key. Both come from one `str.join` in C (a Python
    loop over 5,000 names costs several times the join): the names joined by NUL, which Kubernetes
    names cannot hold; a list whose names do hold one is keyed by its tuple."""
    if isinstance(names, list):
        try:
            joined = "\0".join(names)
        except TypeError:
            pass
        else:
            return joined if joined.count("\0") == len(names) - 1 else tuple(names)
    raise BadRequest("NodeNames: must be a list of node names (strings)")


_NAMES_MEMBER = b'"NodeNames":'


@dataclass
class NamesHead:
    """A names-mode ExtenderArgs read up to its NodeNames array (see names_head)."""
    pod: dict
    names_at: int   # offset in the body where the NodeNames array starts


def names_head(body: bytes) -> NamesHead | None:
    """The checked pod of a names-mode ExtenderArgs whose last member is NodeNames, as Go's
    encoding/json writes kube-scheduler's (`{"Pod":{..},"Nodes":null,"NodeNames":[..]}`), and where
    the array starts, without decoding it; None for any other form (parse_extender_args takes
    those). Whoever reads the array must check that the body ends right after it (names_tail_ok).

    Why this is exact: the head is decoded as the body up to `"NodeNames":` followed by
    `"NodeNames":null}`. That decodes only if the member is at the top level of the object (the
    brace closes exactly one level); with the array and the closing brace after it, the body is
    that object with NodeNames set to the array."""
    first = body.find(_NAMES_MEMBER)
    for at in (first, None):
        if at is None:   # a pod may hold the key too: then NodeNames, last, is the last one
            at = body.rfind(_NAMES_MEMBER)
            if at == first:
                return None
        if at < 0:
            return None
        if body[at + len(_NAMES_MEMBER):at + len(_NAMES_MEMBER) + 64].lstrip()[:1] != b"[":
            continue   # not an array here (a full NodeList request has "NodeNames":null)
        try:
            doc = decode(body[:at] + _NAMES_MEMBER + b"null}")
        except BadRequest:
            continue
        if (not isinstance(doc, dict) or _field(doc, "Nodes") is not None
                or any(k.lower() == "nodenames" for k in doc if k != "NodeNames")):
            return None
        try:
            return NamesHead(_check_pod(_field(doc, "Pod"), "Pod"), at + len(_NAMES_MEMBER))
        except BadRequest:
            return None   # parse_extender_args says what is wrong
    return None


def names_tail_ok(body: bytes, end: int) -> bool:
    """Whether only the object's closing brace, and whitespace, follow the NodeNames array."""
    return body[end:].strip() == b"}"


def filter_result(args: ExtenderArgs, passed: list[str], failed: Mapping[str, str],
                  unresolvable: Mapping[str, str], error: str = "") -> dict:
    """ExtenderFilterResult in the same form as the request: names in, names out; NodeList in,
    NodeList out (a reply holding only NodeNames would filter out every node)."""
    out: dict[str, Any] = {"FailedNodes": dict(failed), "FailedAndUnresolvableNodes": dict(unresolvable),
                           "Error": error}
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


# -- names-mode replies joined from entries encoded once per node (scheduler/fragments.py) --------
def name_entry(name: str) -> bytes:
    """A NodeNames entry: `"name"`."""
    return encode(name)


def reason_entry(name: str, reason: str) -> bytes:
    """A FailedNodes or FailedAndUnresolvableNodes entry: `"name":"reason"`."""
    return encode(name) + b":" + encode(reason)


def score_entry(name: str, score: int) -> bytes:
    """A HostPriorityList entry: `{"Host":"name","Score":n}`."""
    return encode({"Host": name, "Score": score})


# The fixed parts of a names-mode filter reply, around its sections' entries in FILTER_ORDER.
FILTER_PIECES = (b'{"FailedNodes":{', b'},"FailedAndUnresolvableNodes":{', b'},"Error":"","NodeNames":[',
                 b'],"Nodes":null}')


def names_filter_reply(passed: bytes, failed: bytes, unresolvable: bytes) -> bytes:
    """The encoded `filter_result` of a names-mode request, from comma-separated entries."""
    p = FILTER_PIECES
    return b"".join((p[0], failed, p[1], unresolvable, p[2], passed, p[3]))


PRIORITY_PIECES = (b"[", b"]")   # around a HostPriorityList's entries


def priority_reply(entries: bytes) -> bytes:
    """The encoded `host_priority_list`, from comma-separated entries."""
    return b"".join((PRIORITY_PIECES[0], entries, PRIORITY_PIECES[1]))


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
    out: dict[str, dict] = {}
    if meta is not None:
        if not isinstance(meta, dict) or not all(isinstance(v, dict) for v in meta.values()):
            raise BadRequest("NodeNameToMetaVictims: must map node names to MetaVictims objects")
        out = {k: {"Pods": _field(v, "Pods") or [], "NumPDBViolations": _field(v, "NumPDBViolations") or 0}
               for k, v in meta.items()}
    elif full is not None:
        if not isinstance(full, dict) or not all(isinstance(v, dict) for v in full.values()):
            raise BadRequest("NodeNameToVictims: must map node names to Victims objects")
        for node, victims in full.items():
            pods = _field(victims, "Pods") or []
            if not isinstance(pods, list):
                raise BadRequest(f"NodeNameToVictims.{node}.Pods: must be a list of Pods")
            uids = [{"UID": ((p or {}).get("metadata") or {}).get("uid", "")} for p in pods if isinstance(p, dict)]
            out[node] = {"Pods": uids, "NumPDBViolations": _field(victims, "NumPDBViolations") or 0}
    return PreemptionArgs(pod, out)


def preemption_result(meta_victims: Mapping[str, dict]) -> dict:
    return {"NodeNameToMetaVictims": dict(meta_victims)}
