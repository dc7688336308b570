"""Trusted execution environments and the Confidential Containers runtime classes that ask for them."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from wattwise.models.errors import InvalidInputError


class TeeKind(str, enum.Enum):
    TDX = "tdx"
    SEV_SNP = "sev-snp"
    SGX = "sgx"
    NVIDIA_CC = "nvidia-cc"

    @classmethod
    def parse(cls, text: str, path: str = "tee") -> "TeeKind":
        key = text.strip().lower().replace("_", "-")
        key = _ALIASES.get(key, key)
        try:
            return cls(key)
        except ValueError:
            allowed = ", ".join(k.value for k in cls)
            raise InvalidInputError(path, f"unknown TEE kind {text!r}", f"use one of {allowed}") from None


_ALIASES = {"snp": "sev-snp", "sevsnp": "sev-snp", "amd-sev-snp": "sev-snp", "intel-tdx": "tdx",
            "intel-sgx": "sgx", "nvidia": "nvidia-cc", "cc": "nvidia-cc", "gpu-cc": "nvidia-cc"}


@dataclass(frozen=True)
class Confidentiality:
    """What a workload demands of a node's TEE.

    `any_of` holds alternatives; each alternative is a set of TEE kinds that must all be ready on
    the node. `{{TDX}, {SEV_SNP}}` means "TDX or SEV-SNP"; `{{TDX, NVIDIA_CC}}` means a TDX
    guest with a GPU in confidential mode. Empty means no TEE is required.
    `remote` marks peer pods (kata-remote): the pod runs in a separate VM, so the node's TEE and
    power say nothing about it.
    """

    any_of: frozenset[frozenset[TeeKind]] = frozenset()
    remote: bool = False
    source: str = ""

    @property
    def required(self) -> bool:
        return bool(self.any_of)

    def allows(self, ready_tees: frozenset[TeeKind]) -> bool:
        return not self.any_of or any(option <= ready_tees for option in self.any_of)

    def describe(self) -> str:
        if not self.any_of:
            return "none"
        return " or ".join("+".join(sorted(k.value for k in option)) for option in
                           sorted(self.any_of, key=lambda o: sorted(k.value for k in o)))

    @classmethod
    def of_kinds(cls, kinds, source: str = "") -> "Confidentiality":
        """Any one of `kinds` is acceptable."""
        return cls(frozenset(frozenset({TeeKind(k) if not isinstance(k, TeeKind) else k}) for k in kinds),
                   source=source)


NONE = Confidentiality()

# Confidential Containers runtime classes, as kata-deploy installs them (kata-containers/kata-containers,
# tools/packaging/kata-deploy/runtimeclasses/), and as OpenShift sandboxed containers names its
# own (kata-cc-intel: TDX; kata-cc-amd: SEV-SNP). kata-qemu-coco-dev runs the confidential stack
# with no real TEE: it demands nothing of the node.
RUNTIME_CLASS_TEES: dict[str, Confidentiality] = {
    "kata-qemu-tdx": Confidentiality(frozenset({frozenset({TeeKind.TDX})}), source="runtimeClassName"),
    "kata-qemu-snp": Confidentiality(frozenset({frozenset({TeeKind.SEV_SNP})}), source="runtimeClassName"),
    "kata-qemu-nvidia-gpu-tdx": Confidentiality(
        frozenset({frozenset({TeeKind.TDX, TeeKind.NVIDIA_CC})}), source="runtimeClassName"),
    "kata-qemu-nvidia-gpu-snp": Confidentiality(
        frozenset({frozenset({TeeKind.SEV_SNP, TeeKind.NVIDIA_CC})}), source="runtimeClassName"),
    "kata-cc-intel": Confidentiality(frozenset({frozenset({TeeKind.TDX})}), source="runtimeClassName"),
    "kata-cc-amd": Confidentiality(frozenset({frozenset({TeeKind.SEV_SNP})}), source="runtimeClassName"),
    "kata-qemu-coco-dev": Confidentiality(source="runtimeClassName"),
    "kata-remote": Confidentiality(remote=True, source="runtimeClassName"),
}

COCO_RUNTIME_CLASSES = frozenset(RUNTIME_CLASS_TEES)


def confidentiality_from_runtime_class(name: str | None) -> Confidentiality | None:
    """The requirement a runtime class implies, or None when the class is not a CoCo class."""
    if not name:
        return None
    return RUNTIME_CLASS_TEES.get(name)


def parse_tee_list(text_or_list, path: str) -> Confidentiality:
    """Parse `"tdx,sev-snp"` or `["tdx", "sev-snp+nvidia-cc"]` (`+` joins kinds needed together)."""
    items = text_or_list.split(",") if isinstance(text_or_list, str) else list(text_or_list)
    options = set()
    for i, item in enumerate(items):
        item = str(item).strip()
        if not item or item.lower() == "none":
            continue
        options.add(frozenset(TeeKind.parse(part, f"{path}[{i}]") for part in item.split("+")))
    return Confidentiality(frozenset(options), source=path)
