"""Day-one energy models from a hardware profile, for pairs with no measurements yet.

Per model type: frames per second one core sustains without AMX, the AMX speed-up, frames per
second per GPU. Steady-state TEE overheads: TDX/SGX with AMX under 10% throughput, H100
confidential mode 4-8% (Chrapek et al., "Confidential LLM Inference: Performance and Cost Across
CPU and GPU TEEs", IISWC 2025, arXiv:2509.18886). AMX's 3.7x speed-up at equal power gives about 0.27x the energy
per frame, the reference pipeline's published ratio.
"""

from __future__ import annotations

from dataclasses import dataclass

from wattwise.models.cluster import NodeClass
from wattwise.models.energy import WorkloadClassModel
from wattwise.models.replica_model import ReplicaPowerModel
from wattwise.models.tee import TeeKind
from wattwise.models.workload import Workload


@dataclass(frozen=True)
class ModelProfile:
    fps_per_core: float      # non-AMX CPU core
    amx_speedup: float       # AMX core over non-AMX core
    fps_per_gpu: float       # one GPU
    standing_fraction: float = 0.15  # share of a busy replica's power drawn even when idle


PROFILES: dict[str, ModelProfile] = {
    "detector-bf16": ModelProfile(fps_per_core=1.6, amx_speedup=3.7, fps_per_gpu=700.0),
    "detector-int8": ModelProfile(fps_per_core=3.2, amx_speedup=3.0, fps_per_gpu=1200.0),
    "classifier-bf16": ModelProfile(fps_per_core=8.0, amx_speedup=3.7, fps_per_gpu=4000.0),
    "segmenter-bf16": ModelProfile(fps_per_core=0.5, amx_speedup=3.5, fps_per_gpu=250.0),
}

TEE_OVERHEAD: dict[TeeKind, float] = {TeeKind.TDX: 0.08, TeeKind.SEV_SNP: 0.08, TeeKind.SGX: 0.10,
                                      TeeKind.NVIDIA_CC: 0.06}


def tee_overhead(workload: Workload, node_class: NodeClass) -> float:
    """Throughput lost to the TEE the workload would use on this class (worst allowed option)."""
    if not workload.confidentiality.required:
        return 0.0
    usable = [opt for opt in workload.confidentiality.any_of if opt <= node_class.tee_kinds]
    if not usable:
        return 0.0
    return max(1 - _product(1 - TEE_OVERHEAD[k] for k in opt) for opt in usable)   # the pod may get any


def _product(values) -> float:
    out = 1.0
    for v in values:
        out *= v
    return out


def prior_model(workload: Workload, node_class: NodeClass,
                profiles: dict[str, ModelProfile] | None = None) -> WorkloadClassModel | None:
    """A prior for the pair, or None when the class cannot run the workload at all (GPU needed)."""
    profile = (profiles or PROFILES).get(workload.model_type, PROFILES["detector-bf16"])
    overhead = tee_overhead(workload, node_class)
    cores = workload.footprint.cpu_m / 1000.0
    if workload.needs_gpu:
        if not node_class.has_gpu:
            return None
        gpus = workload.footprint.gpu
        capacity = gpus * profile.fps_per_gpu * (1 - overhead)
        board_w = max(node_class.gpu_max_w - node_class.gpu_idle_w, 0.0)
        dynamic_w = gpus * board_w + (node_class.power.max_w - node_class.power.idle_w) * min(1.0, cores / node_class.cores)
    else:
        speed = profile.amx_speedup if node_class.amx else 1.0
        capacity = cores * profile.fps_per_core * speed * (1 - overhead)
        dynamic_w = (node_class.power.max_w - node_class.power.idle_w) * min(1.0, cores / node_class.cores)
    if capacity <= 0:
        return None
    standing_w = profile.standing_fraction * dynamic_w
    w_per_fps = (dynamic_w - standing_w) / capacity
    power = ReplicaPowerModel.from_coefficients(standing_w, w_per_fps, 0.0, residual_std_w=0.15 * dynamic_w)
    return WorkloadClassModel(workload=workload.key, node_class=node_class.name, power=power,
                              capacity_fps=capacity, capacity_std_fps=0.2 * capacity, prior=True,
                              source=f"prior:{workload.model_type}")
