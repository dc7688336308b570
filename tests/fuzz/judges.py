"""The judges of what the doors answer a fuzz case, and the tally of a long run. Shared by
tests/fuzz (short mode) and benchmarks/fuzz_doors.py (long mode).

A judge returns a `Verdict`: the outcome's label (HTTP status, gRPC code) and the problems found,
empty when the door behaved:

- never HTTP 5xx, gRPC INTERNAL or UNKNOWN, a dropped connection, or a call that hangs;
- every refusal (HTTP 4xx, the extender's `Error` field, a gRPC error) carries a message naming
  the problem: a field the case broke when it knows which, else a field of the door's wire format;
- an answer is well formed (filter: the documented keys; prioritize: scores 0..10; metrics: finite
  and >= 0), and a gRPC refusal agrees with the metadata parse (invalid metadata: INVALID_ARGUMENT;
  valid: never INVALID_ARGUMENT, except a metricName that is not the one GetMetricSpec gave).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field

import grpc

from wattwise.models.trigger_metadata import ACCEPTED_KEYS, MetadataError, parse_metadata
from wattwise.scaler.proto import externalscaler_pb2 as pb

from tests.fuzz.cases import GrpcCase, HttpCase

UNARY_TIMEOUT_S = 10.0   # far above any answer: a call still open then hangs


@dataclass
class Verdict:
    outcome: str                    # "200", "400", "OK", "INVALID_ARGUMENT", "stream-open", ...
    message: str = ""               # the refusal's message, if any
    problems: list[str] = field(default_factory=list)


# -- the extender ----------------------------------------------------------------------------------

HTTP_VOCABULARY = ("Pod", "Nodes", "NodeNames", "items", "metadata", "name", "spec", "status", "conditions",
                   "labels", "annotations", "runtimeClassName", "NodeNameToVictims", "NodeNameToMetaVictims",
                   "Pods", "UID", "uid", "NumPDBViolations", "ExtenderArgs", "ExtenderPreemptionArgs", "JSON",
                   "request body", "nested", "larger than")


def _names_problem(message: str, names: frozenset[str] | None, vocabulary: tuple[str, ...]) -> str:
    """"" when the message names the problem, else what is wrong with it."""
    if not message.strip():
        return "a refusal with an empty message"
    low = message.lower()
    if names is not None:
        wanted = {n for n in names if n}
        if wanted and not any(n.lower()[:40] in low for n in wanted):
            return f"the message does not name any of {sorted(wanted)[:8]}: {message[:300]!r}"
        if wanted:
            return ""
    if not any(word.lower() in low for word in vocabulary):
        return f"the message names no field of the request: {message[:300]!r}"
    return ""


def judge_http(case: HttpCase, status: int | None, body: bytes, transport: str) -> Verdict:
    if status is None:
        return Verdict("dropped", problems=[transport])
    v = Verdict(str(status))
    if status >= 500:
        v.problems.append(f"HTTP {status}: {body[:300]!r}")
        return v
    try:
        doc = json.loads(body) if body else None
    except ValueError:
        doc = None
    if status == 200:
        if case.path.startswith("/plan"):
            if not isinstance(doc, dict):
                v.problems.append(f"GET /plan answered 200 without a JSON object: {body[:200]!r}")
            return v
        _check_reply(case, doc, v)
        return v
    if status == 400 and case.method == "POST" and case.path in ("/filter", "/prioritize", "/preempt"):
        message = doc.get("Error") if isinstance(doc, dict) else None
        if not isinstance(message, str):
            v.problems.append(f"a 400 without the extender's Error field: {body[:300]!r}")
            return v
        v.message = message
        if message.startswith(("request body is not valid JSON", "empty request body")):
            if _strict_json(case.body):
                v.problems.append(f"valid JSON refused as invalid: {message[:300]!r}")
            return v
        if message.startswith(("ExtenderArgs must be a JSON object", "ExtenderPreemptionArgs must be a JSON object")):
            if _top_level_object(case.body):     # the whole request replaced: what it names is the request
                v.problems.append(f"a JSON object refused as not one: {message[:300]!r}")
            return v
        problem = _names_problem(message, case.names, HTTP_VOCABULARY)
        if problem:
            v.problems.append(problem)
        return v
    if status in (404, 405, 413) or (status == 400 and case.kind == "plan"):
        v.message = body.decode(errors="replace")[:200]
        if not v.message.strip():
            v.problems.append(f"HTTP {status} with an empty body")
        return v
    v.problems.append(f"unexpected HTTP {status}: {body[:300]!r}")
    return v


def _refuse_constant(token: str):
    raise ValueError(f"{token} is not JSON")


def _finite(text: str) -> str:
    if not math.isfinite(float(text)):
        raise ValueError(f"{text[:20]}... is out of a double's range")
    return text


def _strict_json(body: bytes) -> bool:
    """Whether `body` is JSON by RFC 8259 (UTF-8, no NaN or Infinity) with every number in a
    double's range (RFC 8259 section 6 lets a parser limit the range; orjson's is a double's)."""
    try:
        json.loads(body.decode("utf-8"), parse_constant=_refuse_constant, parse_int=_finite, parse_float=_finite)
        return True
    except (ValueError, RecursionError):
        return False


def _top_level_object(body: bytes) -> bool:
    try:
        return isinstance(json.loads(body), dict)
    except (ValueError, RecursionError):
        return False


def _check_reply(case: HttpCase, doc, v: Verdict) -> None:
    verb = case.path.lstrip("/")
    if verb == "filter":
        if not isinstance(doc, dict) or not {"FailedNodes", "FailedAndUnresolvableNodes", "Error"} <= set(doc):
            v.problems.append(f"filter reply without the documented keys: {str(doc)[:300]}")
        elif doc["Error"]:
            v.message = doc["Error"]
            v.outcome = "200-Error"
            problem = _names_problem(doc["Error"], case.names, HTTP_VOCABULARY)
            if problem:
                v.problems.append(problem)
        elif (doc.get("NodeNames") is None) == (doc.get("Nodes") is None):
            v.problems.append(f"filter reply with both or neither of NodeNames and Nodes: {str(doc)[:300]}")
    elif verb == "prioritize":
        if not isinstance(doc, list) or not all(
                isinstance(h, dict) and isinstance(h.get("Host"), str) and type(h.get("Score")) is int
                and 0 <= h["Score"] <= 10 for h in doc):
            v.problems.append(f"prioritize reply is not a list of Host and Score 0..10: {str(doc)[:300]}")
    elif verb == "preempt":
        if not isinstance(doc, dict) or not isinstance(doc.get("NodeNameToMetaVictims"), dict):
            v.problems.append(f"preempt reply without NodeNameToMetaVictims: {str(doc)[:300]}")
    else:
        v.problems.append(f"HTTP 200 for {case.method} {case.path}")


# -- the scaler ------------------------------------------------------------------------------------

SERVICE = "/externalscaler.ExternalScaler/"
RESPONSES = {"GetMetricSpec": pb.GetMetricSpecResponse, "GetMetrics": pb.GetMetricsResponse,
             "IsActive": pb.IsActiveResponse, "StreamIsActive": pb.IsActiveResponse,
             "StreamMetricSpec": pb.GetMetricSpecResponse}
REQUESTS = {m: (pb.GetMetricsRequest if m == "GetMetrics" else pb.ScaledObjectRef) for m in RESPONSES}
REFUSAL_PATH = re.compile(r"^(scaledObjectRef\.name|scaledObjectRef\.namespace|metricName|scalerMetadata"
                          r"(\.(?P<key>[A-Za-z0-9_.-]+)|\[.*?\])?):")
NOT_PLANNED = ("no plan yet", "not planned yet", "no trustworthy demand")


def expected_validity(case: GrpcCase) -> tuple[bool, str]:
    """(valid, why not): what the door's own parse says of the case, bytes decoded first."""
    if case.raw is not None:
        try:
            msg = REQUESTS[case.method].FromString(case.raw)
        except Exception as e:  # noqa: BLE001 - DecodeError and friends
            return False, f"not a protobuf message: {e}"
        ref = msg.scaledObjectRef if case.method == "GetMetrics" else msg
        name, namespace, md = ref.name, ref.namespace, dict(ref.scalerMetadata)
    else:
        name, namespace, md = case.name, case.namespace, case.metadata
    try:
        parse_metadata(name, namespace, md)
    except MetadataError as e:
        return False, str(e)
    return True, ""


def judge_grpc(case: GrpcCase, valid: bool, code: grpc.StatusCode, details: str, reply) -> Verdict:
    v = Verdict(code.name, details)
    if code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS):
        v.problems.append(f"{code.name}: {details[:300]!r}")
        return v
    if code == grpc.StatusCode.OK:
        if not valid:
            v.problems.append("invalid metadata answered OK")
        _check_grpc_reply(case, reply, v)
        return v
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        if valid and case.method.startswith("Stream"):
            v.outcome, v.message = "stream-open", ""   # nothing to push yet: the stream waits, as it should
        else:
            v.problems.append(f"no answer within {UNARY_TIMEOUT_S} s")
        return v
    if code == grpc.StatusCode.UNAVAILABLE:
        if not any(p in details for p in NOT_PLANNED):
            v.problems.append(f"UNAVAILABLE that is not 'not planned yet' (a dropped connection?): {details[:300]!r}")
        elif not valid:
            v.problems.append(f"invalid metadata answered UNAVAILABLE: {details[:300]!r}")
        return v
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return v                                 # gRPC's own message-size limit
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        if not details.strip():
            v.problems.append("INVALID_ARGUMENT with an empty message")
            return v
        if details.startswith("request is not a valid externalscaler."):
            if case.raw is None:
                v.problems.append(f"a well-formed message refused as malformed: {details[:300]!r}")
            return v
        m = REFUSAL_PATH.match(details)
        if m is None:
            v.problems.append(f"a refusal that does not start with the field it refuses: {details[:300]!r}")
            return v
        if m.group("key") and m.group("key") not in ACCEPTED_KEYS and m.group("key") not in _base_keys(case):
            v.problems.append(f"the refusal names a key the request does not hold: {details[:300]!r}")
        if valid and not details.startswith("metricName:"):
            v.problems.append(f"valid metadata refused: {details[:300]!r}")
        if case.names is not None and case.raw is None:
            problem = _names_problem(details, case.names | {"scaledObjectRef", "scalerMetadata"}, ())
            if problem:
                v.problems.append(problem)
        return v
    v.problems.append(f"unexpected {code.name}: {details[:300]!r}")
    return v


def _base_keys(case: GrpcCase) -> set[str]:
    """The metadata's keys, with and without `FromEnv` (raw bytes: the keys they decode to)."""
    metadata = case.metadata
    if case.raw is not None:
        try:
            msg = REQUESTS[case.method].FromString(case.raw)
        except Exception:  # noqa: BLE001 - undecodable: no keys
            return set()
        metadata = (msg.scaledObjectRef if case.method == "GetMetrics" else msg).scalerMetadata
    return {k.removesuffix("FromEnv") or k for k in metadata} | set(metadata)


def _check_grpc_reply(case: GrpcCase, reply, v: Verdict) -> None:
    if case.raw is not None:
        return                                   # raw bytes back: the message shape is gRPC's business
    if case.method in ("GetMetricSpec", "StreamMetricSpec"):
        specs = reply.metricSpecs
        if len(specs) != 1 or specs[0].targetSize < 1 or not specs[0].targetSizeFloat > 0:
            v.problems.append(f"bad metric spec: {reply}")
    elif case.method == "GetMetrics":
        values = reply.metricValues
        if len(values) != 1 or values[0].metricValue < 0 or not math.isfinite(values[0].metricValueFloat) \
                or values[0].metricValueFloat < 0 or values[0].metricValue != math.ceil(values[0].metricValueFloat):
            v.problems.append(f"bad metric value: {reply}")


# -- tallies (the long run) -------------------------------------------------------------------------

@dataclass
class Tally:
    inputs: int = 0
    outcomes: Counter = field(default_factory=Counter)
    kinds: Counter = field(default_factory=Counter)
    messages: Counter = field(default_factory=Counter)
    problems: list[tuple[str, str]] = field(default_factory=list)   # (problem, case) of the first few
    problem_count: int = 0
    server_errors: int = 0        # HTTP 5xx, gRPC INTERNAL / UNKNOWN
    dropped: int = 0

    def add(self, case, v: Verdict) -> None:
        self.inputs += 1
        self.outcomes[v.outcome] += 1
        self.kinds[getattr(case, "kind", "")] += 1
        if v.message:
            self.messages[_shape(v.message)] += 1
        if v.outcome.startswith("5") or v.outcome in ("INTERNAL", "UNKNOWN"):
            self.server_errors += 1
        if v.outcome == "dropped":
            self.dropped += 1
        if v.problems:
            self.problem_count += 1
            if len(self.problems) < 50:
                self.problems.append(("; ".join(v.problems), repr(case)[:1500]))


def _shape(message: str) -> str:
    """A message with its quoted values and numbers blanked: one line per kind of refusal."""
    text = re.sub(r"'(?:[^'\\]|\\.)*'(\.\.\. \(\d+ characters\))?", "'…'", message)
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '"…"', text)
    text = re.sub(r"\d+", "N", text)
    return text[:160]
