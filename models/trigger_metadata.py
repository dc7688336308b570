"""The trigger `metadata` a ScaledObject sends (KEDA's `scalerMetadata`): validated into a request.
The same parse serves KEDA's calls (the scaler) and the ScaledObjects read from the API server
(`cluster_workloads`).

Every key is documented in docs/scaler.md. Values arrive as strings. A key KEDA reads itself
(`scalerAddress`, `enableTLS`, `unsafeSsl`) is ignored; a key that ends in `FromEnv` has already
been resolved by KEDA from the target's environment and counts as the key without the suffix.
Any other unknown key is refused, so a typo (`minReplica`) is an error, not a silent default.

Bad input is bounded before anything is parsed or kept (`check_limits`): a ScaledObject name of
at most 253 characters and a namespace of at most 63 (Kubernetes' own limits), at most 64
metadata keys of at most 128 characters, values of at most 4 KiB (KEDA's own keys excepted: they
are ignored, never kept). A refusal quotes at most `QUOTE_CHARS` of any value it names (`quote`),
so messages and log lines stay short whatever arrives.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from wattwise.models.errors import InvalidInputError
from wattwise.models.resources import parse_cpu_m, parse_memory_mib
from wattwise.models.tee import Confidentiality, parse_tee_list

# KEDA reads these itself (TLS material belongs in a TriggerAuthentication; old examples put it here).
KEDA_OWN_KEYS = frozenset({"scalerAddress", "enableTLS", "unsafeSsl", "tlsCertFile", "caCert", "tlsClientCert",
                           "tlsClientKey"})
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
_DNS = re.compile(DNS_LABEL)


MAX_NAME_CHARS = 253          # a Kubernetes object name (DNS subdomain)
MAX_NAMESPACE_CHARS = 63      # a Kubernetes namespace (DNS label)
MAX_KEYS = 64                 # metadata keys in one ScaledObjectRef
MAX_KEY_CHARS = 128
MAX_VALUE_CHARS = 4096        # a metadata value WattWise reads (a PromQL query is the longest)
QUOTE_CHARS = 80              # the most of a value any refusal or log line quotes
_PROBLEM_CHARS = 240
_HINT_CHARS = 400
# A key a message names as `scalerMetadata.<key>`; any other (empty, blank, spaced, long, control
# characters) is quoted, `scalerMetadata[' workload']`, so the reader sees the key KEDA sent.
_PLAIN_KEY = re.compile(rf"[A-Za-z0-9_.-]{{1,{QUOTE_CHARS}}}")


def quote(value: object, limit: int = QUOTE_CHARS) -> str:
    """`repr` of at most the first `limit` characters, saying how long the whole value was."""
    text = str(value)
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


class MetadataError(InvalidInputError):
    """The ScaledObjectRef's name, namespace or scalerMetadata is missing a key or holds a bad
    value; retrying never helps. `key` names what was wrong (`label` is its bounded form for
    metrics); `path` overrides the message's `scalerMetadata.<key>`."""

    def __init__(self, key: str, problem: str, hint: str = "", path: str | None = None):
        if path is None:
            path = f"scalerMetadata.{key}" if _PLAIN_KEY.fullmatch(key) else f"scalerMetadata[{quote(key)}]"
        super().__init__(path, _clip(problem, _PROBLEM_CHARS), _clip(hint, _HINT_CHARS))
        self.key = key

    @property
    def label(self) -> str:
        """`key` when it is one WattWise knows, else "unknown": a metric label set stays bounded."""
        return self.key if self.key in _LABELS else "unknown"


def check_limits(name: str, namespace: str, metadata: Mapping[str, str]) -> None:
    """Refuse oversized input before it is parsed or kept. Raises MetadataError."""
    if len(name) > MAX_NAME_CHARS:
        raise MetadataError("name", f"too long ({len(name)} characters): {quote(name)}",
                            f"a Kubernetes object name has at most {MAX_NAME_CHARS}", path="scaledObjectRef.name")
    if len(namespace) > MAX_NAMESPACE_CHARS:
        raise MetadataError("namespace", f"too long ({len(namespace)} characters): {quote(namespace)}",
                            f"a Kubernetes namespace has at most {MAX_NAMESPACE_CHARS}",
                            path="scaledObjectRef.namespace")
    if len(metadata) > MAX_KEYS:
        raise MetadataError("scalerMetadata", f"{len(metadata)} keys", f"at most {MAX_KEYS}; accepted keys: "
                            f"{', '.join(ACCEPTED_KEYS)}", path="scalerMetadata")
    for key, value in metadata.items():
        if len(key) > MAX_KEY_CHARS:
            raise MetadataError(key, f"key too long (at most {MAX_KEY_CHARS} characters)",
                                f"accepted keys: {', '.join(ACCEPTED_KEYS)}")
        if len(value) > MAX_VALUE_CHARS and key not in KEDA_OWN_KEYS:
            raise MetadataError(_base_key(key), f"value too long ({len(value)} characters): {quote(value)}",
                                f"at most {MAX_VALUE_CHARS} characters")


class _Keys(BaseModel):
    """The accepted keys, as KEDA spells them. Defaults `None` mean "use the server's default
    or the workload catalogue's value" (see `ScalerRequest`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    workload: str = Field(min_length=1)
    query: str | None = Field(default=None, min_length=1)
    queryUnit: Literal["streams", "fps"] = "streams"
    streams: float | None = Field(default=None, ge=0, le=1_000_000)
    fpsPerStream: float | None = Field(default=None, gt=0, le=240)
    objective: Literal["energy", "carbon", "balanced"] | None = None
    carbonWeight: float | None = Field(default=None, ge=0, le=1)
    tee: str | None = None
    minReplicas: int | None = Field(default=None, ge=0, le=100_000)
    maxReplicas: int | None = Field(default=None, ge=1, le=100_000)
    headroom: float | None = Field(default=None, ge=0, le=5)
    model: str | None = Field(default=None, min_length=1, max_length=128)
    cpu: str | None = None
    memory: str | None = None
    gpu: int | None = Field(default=None, ge=0, le=16)
    originZone: str | None = Field(default=None, min_length=1, max_length=63)
    latencyMs: float | None = Field(default=None, gt=0, le=60_000)

    @field_validator("streams", "fpsPerStream", "carbonWeight", "headroom", "latencyMs")
    @classmethod
    def finite(cls, v):
        if v is not None and not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v

    @model_validator(mode="after")
    def one_demand(self):
        if (self.query is None) == (self.streams is None):
            raise ValueError("give exactly one of `query` (PromQL) or `streams` (a stream count)")
        if self.minReplicas is not None and self.maxReplicas is not None and self.maxReplicas < self.minReplicas:
            raise ValueError("maxReplicas must be at least minReplicas")
        if self.carbonWeight is not None and self.objective != "balanced":
            raise ValueError("carbonWeight applies only with objective `balanced`")
        return self


ACCEPTED_KEYS = tuple(_Keys.model_fields)
_LABELS = frozenset(ACCEPTED_KEYS) | {"name", "namespace", "scalerMetadata", "metricName"}

_HINTS = {
    "workload": "the workload's name (a DNS label), or namespace/name",
    "query": "a PromQL expression whose value is the workload's active streams (or fps with queryUnit: fps)",
    "queryUnit": "streams or fps",
    "streams": "a number of streams >= 0",
    "fpsPerStream": "a number > 0 and <= 240",
    "objective": "energy, carbon or balanced",
    "carbonWeight": "a number between 0 and 1, with objective balanced",
    "tee": "comma-separated TEE kinds: tdx, sev-snp, sgx, nvidia-cc; '+' joins kinds needed together; none",
    "minReplicas": "an integer >= 0",
    "maxReplicas": "an integer >= 1, at least minReplicas",
    "headroom": "a fraction between 0 and 5 (0.1 = 10% capacity above demand)",
    "model": "the workload's model type, e.g. detector-bf16",
    "cpu": "a Kubernetes CPU quantity, e.g. 4 or 500m",
    "memory": "a Kubernetes memory quantity, e.g. 8Gi",
    "gpu": "an integer between 0 and 16",
    "originZone": "the grid zone the workload's streams come from (a node's grid_zone in GET /plan, e.g. DE)",
    "latencyMs": "the latency bound per frame in milliseconds, round trip from originZone included (default 200)",
}


@dataclass(frozen=True)
class DemandSpec:
    """How the workload's demand is measured: a PromQL `query` (its value in `unit`) or a fixed
    number of `streams`."""

    query: str | None = None
    unit: str = "streams"
    streams: float | None = None


@dataclass(frozen=True)
class ScalerRequest:
    """One ScaledObject's trigger, validated. `None` fields fall back to the catalogue or server."""

    scaled_object: str
    scaled_object_namespace: str
    workload_name: str
    workload_namespace: str
    demand: DemandSpec
    fps_per_stream: float | None = None
    objective: str | None = None
    carbon_weight: float | None = None
    tee: Confidentiality | None = None
    min_replicas: int | None = None
    max_replicas: int | None = None
    headroom: float | None = None
    model: str | None = None
    cpu_m: int | None = None
    memory_mib: int | None = None
    gpu: int | None = None
    origin_zone: str | None = None
    latency_ms: float | None = None

    @property
    def workload_key(self) -> str:
        return f"{self.workload_namespace}/{self.workload_name}"

    @property
    def metric_name(self) -> str:
        """Unique per workload (KEDA adds its own `sN-` prefix and strips it before calling us)."""
        return f"wattwise-{self.workload_namespace}-{self.workload_name}"

    def same_plan_inputs(self, other: "ScalerRequest") -> bool:
        """True when the two differ only in which ScaledObject sent them."""
        from dataclasses import replace

        return replace(other, scaled_object=self.scaled_object,
                       scaled_object_namespace=self.scaled_object_namespace) == self


def _base_key(key: str) -> str:
    return key[: -len("FromEnv")] if key.endswith("FromEnv") and len(key) > len("FromEnv") else key


def _normalise_keys(metadata: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in metadata.items():
        if key in KEDA_OWN_KEYS:
            continue
        name = _base_key(key)
        if name in out:
            raise MetadataError(name, f"given twice (as {quote(name)} and {quote(name + 'FromEnv')})",
                                "keep one of them")
        out[name] = value
    return out


def _pydantic_error(err: ValidationError, raw: Mapping[str, str]) -> MetadataError:
    first = err.errors()[0]
    loc = [str(p) for p in first["loc"]]
    if first["type"] == "extra_forbidden":
        key = loc[0]
        return MetadataError(key, "unknown key", f"accepted keys: {', '.join(ACCEPTED_KEYS)}")
    if first["type"] == "missing":
        key = loc[0]
        return MetadataError(key, "is required", _HINTS.get(key, ""))
    if not loc:  # a rule across keys
        msg = str(first.get("msg", "")).removeprefix("Value error, ")
        key = "query" if "query" in msg else ("maxReplicas" if "maxReplicas" in msg else "carbonWeight")
        return MetadataError(key, msg)
    key = loc[0]
    return MetadataError(key, f"invalid value {quote(raw.get(key))}", f"expected {_HINTS.get(key, first['msg'])}")


def _split_workload(text: str, default_namespace: str) -> tuple[str, str]:
    namespace, _, name = text.rpartition("/")
    namespace = namespace or default_namespace
    for part in (namespace, name):
        if not _DNS.match(part):
            raise MetadataError("workload", f"invalid value {quote(text)}", f"expected {_HINTS['workload']}")
    return namespace, name


def parse_metadata(name: str, namespace: str, metadata: Mapping[str, str]) -> ScalerRequest:
    """Validate one ScaledObjectRef's metadata. Raises `MetadataError` naming the key."""
    check_limits(name, namespace, metadata)
    raw = _normalise_keys(metadata)
    try:
        keys = _Keys.model_validate(raw)
    except ValidationError as e:
        raise _pydantic_error(e, raw) from None
    wl_namespace, wl_name = _split_workload(keys.workload, namespace or "default")
    tee = None
    if keys.tee is not None:
        try:
            tee = parse_tee_list(keys.tee, "tee")
        except InvalidInputError as e:
            raise MetadataError("tee", e.problem, e.hint or _HINTS["tee"]) from None
    cpu_m = memory_mib = None
    try:
        if keys.cpu is not None:
            cpu_m = parse_cpu_m(keys.cpu, "cpu")
        if keys.memory is not None:
            memory_mib = parse_memory_mib(keys.memory, "memory")
    except InvalidInputError as e:
        raise MetadataError(e.path, f"invalid value {quote(raw.get(e.path))}", f"expected {_HINTS[e.path]}") from None
    if cpu_m is not None and cpu_m <= 0 and not (keys.gpu or 0) > 0:
        # a CPU replica's capacity is its cores times the model's rate per core: with none, no
        # class could run it and the plan would ask for no replicas whatever the demand
        raise MetadataError("cpu", f"{quote(raw.get('cpu'))} gives a CPU replica no CPU to run on",
                            "set the CPU one replica requests, e.g. 4 or 500m (or gpu for a GPU replica)")
    return ScalerRequest(
        scaled_object=name, scaled_object_namespace=namespace, workload_name=wl_name,
        workload_namespace=wl_namespace,
        demand=DemandSpec(query=keys.query, unit=keys.queryUnit, streams=keys.streams),
        fps_per_stream=keys.fpsPerStream, objective=keys.objective, carbon_weight=keys.carbonWeight, tee=tee,
        min_replicas=keys.minReplicas, max_replicas=keys.maxReplicas, headroom=keys.headroom, model=keys.model,
        cpu_m=cpu_m, memory_mib=memory_mib, gpu=keys.gpu, origin_zone=keys.originZone, latency_ms=keys.latencyMs)
