"""Schedulable resources in integer units: millicores, MiB, devices."""

from __future__ import annotations

import re
from dataclasses import dataclass

from wattwise.models.errors import InvalidInputError


@dataclass(frozen=True)
class Resources:
    cpu_m: int = 0
    memory_mib: int = 0
    gpu: int = 0

    def __add__(self, other: "Resources") -> "Resources":
        return Resources(self.cpu_m + other.cpu_m, self.memory_mib + other.memory_mib, self.gpu + other.gpu)

    def __sub__(self, other: "Resources") -> "Resources":
        return Resources(self.cpu_m - other.cpu_m, self.memory_mib - other.memory_mib, self.gpu - other.gpu)

    def scaled(self, n: int) -> "Resources":
        return Resources(self.cpu_m * n, self.memory_mib * n, self.gpu * n)

    def fits_in(self, other: "Resources") -> bool:
        return self.cpu_m <= other.cpu_m and self.memory_mib <= other.memory_mib and self.gpu <= other.gpu

    def describe(self) -> str:
        """As a person reads it, with no comma (kube-scheduler joins reasons with commas):
        `4500m CPU and 10240Mi memory`, `... and 2 GPUs` (GPUs only when asked for)."""
        gpus = f" and {self.gpu} GPU{'s' if self.gpu > 1 else ''}" if self.gpu else ""
        return f"{self.cpu_m}m CPU and {self.memory_mib}Mi memory{gpus}"

    def max_copies_in(self, room: "Resources") -> int:
        """How many copies of `self` fit in `room` (a large number when self is all zeros)."""
        limits = [room_v // need for need, room_v in
                  ((self.cpu_m, room.cpu_m), (self.memory_mib, room.memory_mib), (self.gpu, room.gpu)) if need > 0]
        return max(0, min(limits)) if limits else 1_000_000


_CPU = re.compile(r"^(\d+(?:\.\d+)?)(m?)$")
_MEM = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T|)$")
_MEM_FACTOR_BYTES = {"": 1, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4,
                     "k": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4}


# Kubernetes keeps a quantity in an int64 of its smallest unit (millicores, bytes): a larger one
# cannot come from a real cluster, and hundreds of digits would overflow a float (OverflowError).
MAX_QUANTITY_UNITS = 2 ** 63 - 1


def parse_cpu_m(value, path: str = "cpu") -> int:
    """Kubernetes CPU quantity ("4", "500m", 2.5) to millicores."""
    m = _CPU.match(str(value).strip())
    if not m:
        raise InvalidInputError(path, f"not a CPU quantity: {value!r}", "write cores like 4 or 500m")
    cpu_m = float(m.group(1)) * (1 if m.group(2) else 1000)
    if not cpu_m <= MAX_QUANTITY_UNITS:
        raise InvalidInputError(path, f"CPU quantity too large: {_prefix(value)}",
                                f"at most {MAX_QUANTITY_UNITS}m, as in Kubernetes")
    return int(round(cpu_m))


def parse_memory_mib(value, path: str = "memory") -> int:
    """Kubernetes memory quantity ("8Gi", "512Mi", bytes) to MiB."""
    m = _MEM.match(str(value).strip())
    if not m:
        raise InvalidInputError(path, f"not a memory quantity: {value!r}", "write sizes like 8Gi or 512Mi")
    size_bytes = float(m.group(1)) * _MEM_FACTOR_BYTES[m.group(2)]
    if not size_bytes <= MAX_QUANTITY_UNITS:
        raise InvalidInputError(path, f"memory quantity too large: {_prefix(value)}",
                                f"at most {MAX_QUANTITY_UNITS} bytes, as in Kubernetes")
    return int(size_bytes // 1024**2)


def _prefix(value) -> str:
    text = str(value)
    return repr(text) if len(text) <= 40 else f"{text[:40]!r}... ({len(text)} characters)"
