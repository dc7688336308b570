"""Which power curve a node class discovered from the cluster gets, and from where.

In order: the user's class catalogue (by class name); a bundled SPECpower_ssj2008 curve of the
same CPU generation (Node Feature Discovery gives the CPU's vendor, family and model numbers),
scaled to the node's core count; the node model fitted from Kepler's node power; a generic prior
by core count. The plan reports each class's source, so a user sees which classes run on a guess.

SPECpower curves are wall power (the whole server: power supply, memory, fans, disks); a Kepler fit
is CPU package power (RAPL), lower on the same machine. The measured wall curve is preferred, and a
class is never planned with a mix of the two. The refitter writes no Kepler curve for a class on a
catalogue or SPECpower curve (`telemetry/refit.py`), since it would not be used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from wattwise.models.power_curve import PowerCurve


class PowerCurveSource(str, Enum):
    CATALOGUE = "catalogue"
    SPECPOWER = "specpower"
    KEPLER_FIT = "kepler-fit"
    PRIOR = "prior"


# (vendor_id, family, model) as NFD's cpu-model labels give them (decimal) -> server generation.
# Intel and AMD document these in their CPUID references; the common server parts only.
CPU_GENERATIONS: dict[tuple[str, int, int], str] = {
    ("GenuineIntel", 6, 85): "Cascade Lake",      # also Skylake-SP (same model number)
    ("GenuineIntel", 6, 106): "Ice Lake",
    ("GenuineIntel", 6, 143): "Sapphire Rapids",
    ("GenuineIntel", 6, 207): "Emerald Rapids",
    ("GenuineIntel", 6, 173): "Granite Rapids",
    ("AuthenticAMD", 23, 49): "Rome",
    ("AuthenticAMD", 25, 1): "Milan",
    ("AuthenticAMD", 25, 17): "Genoa",
    ("AuthenticAMD", 26, 2): "Turin",
}


# NFD's `cpu-model.vendor_id` label gives the vendor's short name (klauspost/cpuid's VendorID:
# "Intel", "AMD"); CPUID itself returns the 12-character vendor string. Both are accepted.
VENDOR_IDS = {"Intel": "GenuineIntel", "AMD": "AuthenticAMD"}


def cpu_generation(vendor: str, family: str | int, model: str | int) -> str | None:
    try:
        return CPU_GENERATIONS.get((VENDOR_IDS.get(vendor, vendor), int(family), int(model)))
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class MeasuredCurve:
    """A bundled SPECpower curve: the whole server's power, and the cores it was measured with."""
    generation: str
    cores: int
    curve: PowerCurve


@dataclass(frozen=True)
class ChosenCurve:
    curve: PowerCurve
    source: PowerCurveSource
    note: str


def scaled(curve: PowerCurve, factor: float) -> PowerCurve:
    return PowerCurve(curve.util, tuple(p * factor for p in curve.power_w), curve.sleep_w * factor)


def choose_power_curve(class_name: str, generation: str | None, cores: int,
                       catalogue: Mapping[str, PowerCurve], measured: tuple[MeasuredCurve, ...],
                       fitted: Mapping[str, PowerCurve], prior: PowerCurve) -> ChosenCurve:
    """The curve of a node class (see the module notes for the order)."""
    if class_name in catalogue:
        return ChosenCurve(catalogue[class_name], PowerCurveSource.CATALOGUE, "from the class catalogue")
    same = [m for m in measured if generation and m.generation == generation]
    if same:
        best = min(same, key=lambda m: (abs(m.cores - cores), m.cores))
        factor = cores / best.cores if best.cores else 1.0
        return ChosenCurve(scaled(best.curve, factor), PowerCurveSource.SPECPOWER,
                           f"SPECpower {generation} curve at {best.cores} cores, scaled to {cores}")
    if class_name in fitted:
        return ChosenCurve(fitted[class_name], PowerCurveSource.KEPLER_FIT, "fitted from Kepler node power")
    return ChosenCurve(prior, PowerCurveSource.PRIOR,
                       f"generic prior for {cores} cores (no catalogue entry, measured curve or fit)")
