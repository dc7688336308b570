"""The trigger `metadata` a ScaledObject sends (KEDA's `scalerMetadata`): validated into a request.

Every key is documented in docs/scaler.md. Values arrive as strings. A key KEDA reads itself
(`scalerAddress`, `enableTLS`, `unsafeSsl`) is ignored; a key that ends in `FromEnv` has already
been resolved by KEDA from the target's environment and counts as the key without the suffix.
Any other unknown key is refused, so a typo (`minReplica`) is an error, not a silent default.
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


class MetadataError(InvalidInputError):
    """The scalerMetadata is missing a key or holds a bad value; retrying never helps."""

    def __init__(self, key: str, problem: str, hint: str = ""):
        super().__init__(f"scalerMetadata.{key}", problem, hint)
        self.key = key


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

    @field_validator("streams", "fpsPerStream", "carbonWeight", "headroom")
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


def _normalise_keys(metadata: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in metadata.items():
        if key in KEDA_OWN_KEYS:
            continue
        name = key[: -len("FromEnv")] if key.endswith("FromEnv") and len(key) > len("FromEnv") else key
        if name in out:
            raise MetadataError(key, f"given twice (as {name} and {name}FromEnv)", "keep one of them")
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
    return MetadataError(key, f"invalid value {raw.get(key)!r}", f"expected {_HINTS.get(key, first['msg'])}")


def _split_workload(text: str, default_namespace: str) -> tuple[str, str]:
    namespace, _, name = text.rpartition("/")
    namespace = namespace or default_namespace
    for part in (namespace, name):
        if not _DNS.match(part):
            raise MetadataError("workload", f"invalid value {text!r}", f"expected {_HINTS['workload']}")
    return namespace, name


def parse_metadata(name: str, namespace: str, metadata: Mapping[str, str]) -> ScalerRequest:
    """Validate one ScaledObjectRef's metadata. Raises `MetadataError` naming the key."""
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
        raise MetadataError(e.path, f"invalid value {raw.get(e.path)!r}", f"expected {_HINTS[e.path]}") from None
    return ScalerRequest(
        scaled_object=name, scaled_object_namespace=namespace, workload_name=wl_name,
        workload_namespace=wl_namespace,
        demand=DemandSpec(query=keys.query, unit=keys.queryUnit, streams=keys.streams),
        fps_per_stream=keys.fpsPerStream, objective=keys.objective, carbon_weight=keys.carbonWeight, tee=tee,
        min_replicas=keys.minReplicas, max_replicas=keys.maxReplicas, headroom=keys.headroom, model=keys.model,
        cpu_m=cpu_m, memory_mib=memory_mib, gpu=keys.gpu)


class MetadataCache:
    """Parsed requests by their exact input, so a poll repeated every 15 s is parsed once.
    Bounded: cleared when it outgrows `max_entries` (distinct ScaledObjects, not calls)."""

    def __init__(self, max_entries: int = 20_000):
        self._max = max_entries
        self._items: dict[tuple, ScalerRequest | tuple[str, str, str]] = {}

    def parse(self, name: str, namespace: str, metadata: Mapping[str, str]) -> ScalerRequest:
        key = (name, namespace, tuple(sorted(metadata.items())))
        hit = self._items.get(key)
        if hit is None:
            try:
                hit = parse_metadata(name, namespace, metadata)
            except MetadataError as e:
                hit = (e.key, e.problem, e.hint)
            if len(self._items) >= self._max:
                self._items.clear()
            self._items[key] = hit
        if isinstance(hit, tuple):
            raise MetadataError(*hit)
        return hit
