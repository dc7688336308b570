"""Fuzz inputs for both doors, as hypothesis strategies: generated from scratch, or valid inputs
(the recorded Nodes and Pods, the bundled demo's trigger metadata, the recorded ScaledObjects)
mutated by `mutate` from a seed hypothesis draws.

A case carries what it broke (`names`) so the judge can check that a refusal names it; `None`
means "unknown" (generated documents, flipped bytes): the refusal must then name some field of
the door's vocabulary.

Short mode (CI): `SHORT_EXAMPLES` inputs per door, derandomized (the same inputs on every run),
no example database. Long mode: WATTWISE_FUZZ_EXAMPLES=100000 for the tests, or
benchmarks/fuzz_doors.py, which prints the figures.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from wattwise.models.labels import DEFAULT_MAPPING, MANAGED_LABEL, TEE_ANNOTATION
from wattwise.models.scenario import load_scenario
from wattwise.models.tee import COCO_RUNTIME_CLASSES
from wattwise.scaler.proto import externalscaler_pb2 as pb
from wattwise.scaler.sources import demo_metadata

from tests.fuzz import mutate

SHORT_EXAMPLES = 200   # per door


def fuzz_settings() -> settings:
    """The hypothesis settings of the fuzz tests, read where a test is defined."""
    examples = int(os.environ.get("WATTWISE_FUZZ_EXAMPLES") or SHORT_EXAMPLES)
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None, print_blob=False,
                    suppress_health_check=list(HealthCheck))


REPO = Path(__file__).resolve().parents[2]
SCHEDULER_DATA = REPO / "tests" / "scheduler" / "data"
KUBE_DATA = REPO / "tests" / "data" / "kube"
SCENARIO = REPO / "scenarios" / "metro-retail.yaml"


# -- the extender ------------------------------------------------------------------------------

@dataclass(frozen=True)
class HttpCase:
    method: str
    path: str
    body: bytes
    content_type: str | None = "application/json"
    names: frozenset[str] | None = None   # what a refusal must name (one of); None: any field of the door
    kind: str = ""

    def __repr__(self) -> str:   # hypothesis prints the falsifying case: keep it readable
        return (f"HttpCase({self.method} {self.path}, kind={self.kind}, content_type={self.content_type!r}, "
                f"names={sorted(self.names) if self.names is not None else None}, body={self.body[:600]!r}"
                f"{'...' if len(self.body) > 600 else ''} ({len(self.body)} bytes))")


CONTENT_TYPES = ("application/json",) * 6 + (None, "text/plain", "application/x-www-form-urlencoded",
                                             "multipart/form-data; boundary=x", "application/json; charset=latin-1",
                                             "\u00e9/\u00e9")


@lru_cache(maxsize=None)
def extender_seeds() -> dict[str, tuple]:
    """Valid request documents per verb, from the recorded Nodes and Pods."""
    nodes = json.loads((SCHEDULER_DATA / "nodes.json").read_text())
    pods = list(json.loads((SCHEDULER_DATA / "pods.json").read_text()).values())
    kube_pods = json.loads((KUBE_DATA / "pods.json").read_text())["items"]
    pods += [p for p in kube_pods if p["metadata"].get("labels", {}).get("wattwise.io/workload")]
    names = [n["metadata"]["name"] for n in nodes["items"]]
    args = []
    for pod in pods:
        args.append({"Pod": pod, "Nodes": None, "NodeNames": names})
        args.append({"pod": pod, "nodes": None, "nodenames": names + ["no-such-node"]})
        args.append({"Pod": pod, "Nodes": nodes, "NodeNames": None})
        args.append({"Pod": pod, "Nodes": {"kind": "NodeList", "apiVersion": "v1", "items": nodes["items"][:3]}})
    preempt = []
    for pod in pods:
        preempt.append({"Pod": pod, "NodeNameToMetaVictims": {
            n: {"Pods": [{"UID": f"uid-{i}"}], "NumPDBViolations": i % 2} for i, n in enumerate(names)}})
        preempt.append({"Pod": pod, "NodeNameToVictims": {
            n: {"Pods": [pods[i % len(pods)]], "NumPDBViolations": 0} for i, n in enumerate(names[:4])}})
    return {"filter": tuple(args), "prioritize": tuple(args), "preempt": tuple(preempt)}


VERBS = ("filter", "prioritize", "preempt")


def _mapping_labels() -> tuple[str, ...]:
    m = DEFAULT_MAPPING
    keys = {k for group in (m.tee_labels, m.tee_ready_labels) for ks in group.values() for k in ks}
    keys |= {*m.amx_labels, m.vendor_label, m.family_label, m.model_id_label, m.gpu_product_label, m.gpu_count_label,
             m.cc_mode_label, m.cc_ready_label, m.zone_label, m.instance_type_label, m.class_label, MANAGED_LABEL}
    return tuple(sorted(keys))


NODE_LABELS = _mapping_labels()
NODE_RESOURCES = ("cpu", "memory", *DEFAULT_MAPPING.gpu_resources,
                  *sorted({r for rs in DEFAULT_MAPPING.tee_ready_resources.values() for r in rs}))
RUNTIME_CLASSES = (*sorted(COCO_RUNTIME_CLASSES), "kata", "runc", "", "KATA-QEMU-TDX", "kata-qemu-tdx ", "gvisor")
WORKLOAD_LABELS = ("retail/checkout-cams", "checkout-cams", "security/badge-readers", "badge-readers",
                   "city/city-traffic", "no-such-workload", "retail/no-such", "a/b/c", "/", "retail/", "/checkout-cams",
                   "CHECKOUT-CAMS", "checkout-cams ", "")


def _key(doc: dict, name: str) -> str:
    """The key of `doc` that Go's decoder would match to `name` (the seed's own spelling)."""
    return next((k for k in doc if isinstance(k, str) and k.lower() == name.lower()), name)


def focus_mutation(doc: dict, rng: random.Random) -> tuple[dict, set[str]]:
    """One change to a field the extender reads: the pod's workload label, TEE annotation, runtime
    class, namespace; a node's labels, resources, conditions, taints, name; a node name; victims."""
    pod = _key(doc, "Pod")
    choices: list[tuple[tuple, str]] = [
        ((pod, "metadata", "labels", MANAGED_LABEL), "workload"),
        ((pod, "metadata", "annotations", TEE_ANNOTATION), "tee"), ((pod, "metadata", "labels", TEE_ANNOTATION), "tee"),
        ((pod, "spec", "runtimeClassName"), "runtime-class"), ((pod, "metadata", "namespace"), "text"),
        ((pod, "metadata", "name"), "text"), ((pod, "metadata", "labels"), "any"), ((pod, "metadata"), "any"),
        ((pod, "spec"), "any")]
    nodes = doc.get(_key(doc, "Nodes"))
    if isinstance(nodes, dict) and isinstance(nodes.get("items"), list) and nodes["items"]:
        at = (_key(doc, "Nodes"), "items", rng.randrange(len(nodes["items"])))
        resource = rng.choice(NODE_RESOURCES)
        choices += [((*at, "metadata", "labels", rng.choice(NODE_LABELS)), "label"),
                    ((*at, "status", "allocatable", resource), "quantity"),
                    ((*at, "status", "capacity", resource), "quantity"),
                    ((*at, "status", "conditions"), "any"), ((*at, "status", "conditions", 0, "status"), "label"),
                    ((*at, "status", "conditions", 0, "type"), "text"), ((*at, "spec", "taints"), "any"),
                    ((*at, "spec", "taints", 0, "effect"), "text"), ((*at, "spec", "taints", 0, "key"), "any"),
                    ((*at, "spec", "unschedulable"), "label"), ((*at, "metadata", "name"), "text"),
                    ((*at, "metadata", "resourceVersion"), "any"), ((*at, "metadata", "labels"), "any"),
                    ((*at, "status", "allocatable"), "any"), ((*at, "status"), "any")]
    names = doc.get(_key(doc, "NodeNames"))
    if isinstance(names, list) and names:
        choices.append(((_key(doc, "NodeNames"), rng.randrange(len(names))), "text"))
    for victims_key, uid_path in (("NodeNameToMetaVictims", ("UID",)), ("NodeNameToVictims", ("metadata", "uid"))):
        victims = doc.get(victims_key)
        if isinstance(victims, dict) and victims:
            node = rng.choice(list(victims))
            choices += [((victims_key, node, "Pods", 0, *uid_path), "text"), ((victims_key, node, "Pods"), "any"),
                        ((victims_key, node, "NumPDBViolations"), "any"), ((victims_key, node), "any")]
    path, kind = rng.choice(choices)
    if kind == "workload":
        value = rng.choice(WORKLOAD_LABELS) if rng.random() < 0.7 else mutate.odd_value(rng)
    elif kind == "runtime-class":
        value = rng.choice(RUNTIME_CLASSES) if rng.random() < 0.7 else mutate.odd_value(rng)
    elif kind == "any":
        value = mutate.odd_value(rng)
    else:
        value = mutate.focus_value(rng, kind)
    return mutate.put(doc, path, value), {k for k in path if isinstance(k, str)}


def mutated_http_case(rng: random.Random) -> HttpCase:
    """A recorded request with 1-3 changes to its JSON (half of them to fields the extender
    reads), and sometimes to its bytes."""
    verb = rng.choice(VERBS)
    doc = rng.choice(extender_seeds()[verb])
    names: set[str] = set()
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        if isinstance(doc, dict) and rng.random() < 0.5:
            doc, touched = focus_mutation(doc, rng)
        else:
            doc, touched = mutate.mutate_json(doc, rng)
        names |= touched
    body = mutate.dumps(doc)
    known: frozenset[str] | None = frozenset(names)
    kind = "mutated-json"
    if rng.random() < 0.2:
        body = mutate.mutate_bytes(body, rng)
        known, kind = None, "mutated-bytes"
    return HttpCase("POST", f"/{verb}", body, rng.choice(CONTENT_TYPES), known, kind)


def plan_case(rng: random.Random) -> HttpCase:
    """GET /plan, with a query string, a body or a method it does not take."""
    method, path = rng.choice((("GET", "/plan"), ("GET", "/plan?x=1"), ("GET", "/plan?" + "a" * 3000),
                               ("GET", "/plan/%ff"), ("POST", "/plan"), ("GET", "/filter"), ("PUT", "/filter"),
                               ("DELETE", "/prioritize"), ("GET", "/%00"), ("GET", "/plan?\u2603=\u2603"),
                               ("POST", "/bind"), ("POST", "/filter/extra")))
    body = b"" if rng.random() < 0.5 else mutate.mutate_bytes(b'{"Pod": {}}', rng)
    return HttpCase(method, path, body, rng.choice(CONTENT_TYPES), None, "plan")


# The seed of a case: its kind, and every choice of a mutated case (hypothesis draws the seed, a
# `random.Random` the rest: the kinds keep their weights, whatever hypothesis favours).
seeds = st.integers(0, 2 ** 64 - 1)
json_leaves = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2 ** 70), max_value=2 ** 70),
                        st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20))
json_docs = st.recursive(json_leaves, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)), max_leaves=20)
wire_keys = st.sampled_from(("Pod", "pod", "Nodes", "nodes", "NodeNames", "nodenames", "NODENAMES",
                             "NodeNameToVictims", "NodeNameToMetaVictims", "Error", "x"))


@st.composite
def shaped_args(draw) -> dict:
    """ExtenderArgs-shaped documents built from scratch: the right keys, any values."""
    recorded = extender_seeds()["filter"]
    pod = draw(st.one_of(st.sampled_from([a.get("Pod") or a.get("pod") for a in recorded]), json_docs))
    doc = {draw(st.sampled_from(("Pod", "pod"))): pod}
    for key in draw(st.lists(wire_keys, max_size=3)):
        doc[key] = draw(st.one_of(json_docs, st.lists(st.text(max_size=30), max_size=10),
                                  st.fixed_dictionaries({"items": st.lists(json_docs, max_size=3)})))
    return doc


def extender_case_from_seed(seed: int) -> HttpCase:
    """A recorded request mutated (nine in ten), or GET /plan and other routes, from one seed."""
    rng = random.Random(seed)
    return mutated_http_case(rng) if rng.random() < 0.9 else plan_case(rng)


@st.composite
def generated_extender_cases(draw) -> HttpCase:
    """A document generated from scratch: any JSON, or ExtenderArgs-shaped with any values."""
    kind = draw(st.sampled_from(("generated", "shaped")))
    doc = draw(json_docs if kind == "generated" else shaped_args())
    return HttpCase("POST", f"/{draw(st.sampled_from(VERBS))}", mutate.dumps(doc),
                    draw(st.sampled_from(CONTENT_TYPES)), None, kind)


@st.composite
def extender_cases(draw) -> HttpCase:
    """Three in four from a seed (mutated), one generated."""
    seed = draw(seeds)
    if random.Random(seed + 2 ** 64).random() < 0.75:   # not the seed's own first draw
        return extender_case_from_seed(seed)
    return draw(generated_extender_cases())


# -- the scaler --------------------------------------------------------------------------------

METHODS = ("GetMetricSpec", "GetMetrics", "IsActive", "StreamIsActive", "StreamMetricSpec")


@dataclass(frozen=True)
class GrpcCase:
    method: str
    name: str = ""
    namespace: str = ""
    metadata: dict = field(default_factory=dict)
    metric_name: str = ""
    raw: bytes | None = None             # sent as is to the method path instead of a message
    names: frozenset[str] | None = None  # what a refusal must name (one of)
    kind: str = ""

    def request(self):
        ref = pb.ScaledObjectRef(name=self.name, namespace=self.namespace, scalerMetadata=self.metadata)
        if self.method == "GetMetrics":
            return pb.GetMetricsRequest(scaledObjectRef=ref, metricName=self.metric_name)
        return ref

    def __repr__(self) -> str:
        meta = {k[:60]: v[:60] for k, v in list(self.metadata.items())[:20]}
        return (f"GrpcCase({self.method}, kind={self.kind}, name={self.name[:60]!r}, namespace={self.namespace[:60]!r}, "
                f"metadata={meta} ({len(self.metadata)} keys), metric_name={self.metric_name[:60]!r}, "
                f"raw={self.raw[:200] if self.raw is not None else None!r}, "
                f"names={sorted(self.names) if self.names is not None else None})")


@lru_cache(maxsize=None)
def scaler_seeds() -> tuple[tuple[str, str, dict], ...]:
    """(name, namespace, metadata) of the demo's workloads and the recorded ScaledObjects."""
    seeds = [(w.name, w.namespace, demo_metadata(w)) for w in load_scenario(SCENARIO).snapshot.workloads]
    for file in ("scaledobjects.json", "core-scaledobjects.json"):
        for so in json.loads((KUBE_DATA / file).read_text())["items"]:
            for trigger in so["spec"]["triggers"]:
                if trigger.get("type") in ("external", "external-push") and "workload" in trigger.get("metadata", {}):
                    seeds.append((so["metadata"]["name"], so["metadata"].get("namespace", "default"),
                                  dict(trigger["metadata"])))
    return tuple(seeds)


def metric_name_of(namespace: str, metadata: dict) -> str:
    workload = metadata.get("workload", "")
    ns, _, name = workload.rpartition("/")
    return f"wattwise-{ns or namespace or 'default'}-{name}"


def mutated_grpc_case(rng: random.Random) -> GrpcCase:
    """A demo or recorded trigger with 1-3 changes to its metadata, name, namespace or metricName."""
    method = rng.choice(METHODS)
    name, namespace, md = rng.choice(scaler_seeds())
    metric_name = metric_name_of(namespace, md)
    names: set[str] = set()
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        roll = rng.random()
        if roll < 0.75:
            md, touched = mutate.mutate_metadata(md, rng)
            names |= touched
        elif roll < 0.85:
            name = rng.choice(mutate.TEXTS) if rng.random() < 0.7 else mutate.odd_text(rng)
            names.add("name")
        elif roll < 0.95:
            namespace = rng.choice(mutate.TEXTS) if rng.random() < 0.7 else mutate.odd_text(rng)
            names.add("namespace")
        else:
            metric_name = rng.choice((rng.choice(mutate.TEXTS), mutate.odd_text(rng), metric_name + "x",
                                      "s0-" + metric_name, metric_name.upper()))
    if method == "GetMetrics":
        names.add("metricName")   # a changed workload or namespace changes the metric's name too
    return GrpcCase(method, name, namespace, md, metric_name, None, frozenset(names), "mutated-metadata")


def raw_grpc_case(rng: random.Random) -> GrpcCase:
    """Bytes sent to the method path: a valid message's bytes mutated, or garbage."""
    method = rng.choice(METHODS)
    name, namespace, md = rng.choice(scaler_seeds())
    case = GrpcCase(method, name, namespace, md, metric_name_of(namespace, md))
    raw = mutate.mutate_bytes(case.request().SerializeToString(), rng)
    return GrpcCase(method, name, namespace, md, case.metric_name, raw, None, "raw-bytes")


texts = st.text(max_size=40) | st.sampled_from(mutate.TEXTS)
metadata_maps = st.dictionaries(st.sampled_from(mutate.META_KEYS + mutate.ODD_KEYS) | st.text(max_size=20), texts,
                                max_size=8)


def scaler_case_from_seed(seed: int) -> GrpcCase:
    """A trigger mutated (three in four), or raw bytes to a method path, from one seed."""
    rng = random.Random(seed)
    return mutated_grpc_case(rng) if rng.random() < 0.75 else raw_grpc_case(rng)


@st.composite
def generated_scaler_cases(draw) -> GrpcCase:
    """Metadata generated from scratch, half of it with a workload and a demand key."""
    md = draw(metadata_maps)
    if draw(st.booleans()):
        md = {"workload": draw(st.sampled_from(("checkout-cams", "retail/checkout-cams", "fuzz-cams"))),
              draw(st.sampled_from(("streams", "query"))): draw(texts), **md}
    return GrpcCase(draw(st.sampled_from(METHODS)), draw(texts), draw(texts), md, draw(texts), None, None,
                    "generated")


@st.composite
def scaler_cases(draw) -> GrpcCase:
    """Three in four from a seed (mutated or raw), one generated."""
    seed = draw(seeds)
    if random.Random(seed + 2 ** 64).random() < 0.75:   # not the seed's own first draw
        return scaler_case_from_seed(seed)
    return draw(generated_scaler_cases())
