"""How far apart zones are, and so which zones may serve a workload's cameras.

Live video cannot wait for a cleaner hour, but it can be served from a nearby zone on a cleaner
grid (Frankfurt, Paris and London are 8-15 ms apart). A workload whose cameras are in
`origin_zone` may run on a node only when the node's zone is reachable from there and the node's
time per frame plus the round trip fits the workload's latency bound (`eligibility.hard_reason`).

`Network.parse` reads `{ZONE: {ZONE: rtt_ms}}` (the scenario's `network.rtt_ms`, or the live
loop's zone file): symmetric (a pair given both ways must agree; one way is enough), a zone to
itself is 0 ms whether listed or not, a pair not listed is unreachable. Without a network every
zone is reachable at 0 ms: today's behaviour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from wattwise.models.errors import InvalidInputError


@dataclass(frozen=True)
class Reach:
    """Where a workload's frames come from, and the round trip from there to each reachable zone."""

    origin_zone: str
    rtt_ms: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))

    def rtt_to(self, zone: str) -> float | None:
        """Milliseconds of round trip from the origin to `zone`; None when unreachable."""
        if zone == self.origin_zone:
            return 0.0
        return self.rtt_ms.get(zone)


@dataclass(frozen=True)
class Network:
    rtt_ms: Mapping[tuple[str, str], float] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def zones(self) -> frozenset[str]:
        return frozenset(z for pair in self.rtt_ms for z in pair)

    def reach(self, origin_zone: str) -> Reach:
        return Reach(origin_zone, MappingProxyType({b: ms for (a, b), ms in sorted(self.rtt_ms.items())
                                                    if a == origin_zone}))

    @classmethod
    def parse(cls, raw: object, where: str, known_zones: frozenset[str] | None = None) -> "Network":
        """From `{ZONE: {ZONE: ms}}`; every problem is an InvalidInputError naming its path."""
        if not isinstance(raw, Mapping):
            raise InvalidInputError(where, "must map each zone to {zone: round-trip ms}",
                                    "e.g. {eu-central-1a: {eu-west-2a: 15}}")
        out: dict[tuple[str, str], float] = {}
        for a, row in raw.items():
            if not isinstance(row, Mapping):
                raise InvalidInputError(f"{where}.{a}", "must map zones to round-trip milliseconds")
            for b, ms in row.items():
                path = f"{where}.{a}.{b}"
                for z in (a, b):
                    if known_zones is not None and z not in known_zones:
                        raise InvalidInputError(path, f"unknown zone {z!r}",
                                                f"use one of: {', '.join(sorted(known_zones))}")
                if isinstance(ms, bool) or not isinstance(ms, (int, float)) or not math.isfinite(ms) or ms < 0:
                    raise InvalidInputError(path, f"{ms!r} is not a round trip in milliseconds (a number >= 0)")
                if a == b:
                    if ms != 0:
                        raise InvalidInputError(path, "a zone is 0 ms from itself")
                    continue
                for pair in ((a, b), (b, a)):
                    if pair in out and out[pair] != float(ms):
                        raise InvalidInputError(path, f"{ms} ms, but {pair[0]} -> {pair[1]} is given as "
                                                      f"{out[pair]} ms", "round trips are symmetric: give one")
                    out[pair] = float(ms)
        return cls(MappingProxyType(dict(sorted(out.items()))))
