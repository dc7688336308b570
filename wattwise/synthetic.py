"""Synthetic clusters and workloads of any size, for benchmarks and property tests.

Realistic proportions: most nodes plain or AMX CPUs, a third with a CPU TEE, a few GPU nodes with
confidential mode; zones with different carbon intensity; about half the workloads confidential.
Deterministic for a seed.
"""

from __future__ import annotations

import numpy as np

from wattwise.models.cluster import Node, NodeClass
from wattwise.models.power_curve import PowerCurve
from wattwise.models.ports import CarbonReading
from wattwise.models.resources import Resources
from wattwise.models.snapshot import Objective, PlannerSettings, build_snapshot
from wattwise.models.tee import Confidentiality, TeeKind
from wattwise.models.workload import Demand, Sla, Workload

_SHAPE = (0.30, 0.42, 0.50, 0.57, 0.63, 0.69, 0.75, 0.81, 0.87, 0.93, 1.0)
T = TeeKind


def _curve(peak_w: float, sleep_w: float) -> PowerCurve:
    return PowerCurve(tuple(i / 10 for i in range(11)), tuple(s * peak_w for s in _SHAPE), sleep_w)


CLASSES = (
    NodeClass("spr-amx-tdx", cores=112, memory_gib=512, amx=True, tee_kinds=frozenset({T.TDX, T.SGX}), power=_curve(620, 14)),
    NodeClass("spr-amx", cores=112, memory_gib=512, amx=True, power=_curve(600, 14)),
    NodeClass("icx-sgx", cores=64, memory_gib=256, tee_kinds=frozenset({T.SGX}), power=_curve(490, 12)),
    NodeClass("milan-snp", cpu_vendor="AuthenticAMD", cores=128, memory_gib=256, tee_kinds=frozenset({T.SEV_SNP}),
              power=_curve(455, 11)),
    NodeClass("clx-plain", cores=28, memory_gib=384, power=_curve(277, 9)),
    NodeClass("h100-cc", cpu_vendor="AuthenticAMD", cores=64, memory_gib=512, gpu_product="NVIDIA-H100-80GB-HBM3",
              gpu_count=4, tee_kinds=frozenset({T.SEV_SNP, T.NVIDIA_CC}), power=_curve(268, 20), gpu_idle_w=70,
              gpu_max_w=700, startup_tee_s=150, wake_s=300, wake_energy_j=120000),
)
CLASS_WEIGHTS = (0.25, 0.2, 0.1, 0.2, 0.2, 0.05)
ZONES = {"eu-central-1a": 380.0, "uk-south-1a": 190.0, "us-west-1a": 240.0}
REQUIREMENTS = (
    Confidentiality(),
    Confidentiality(frozenset({frozenset({T.TDX})})),
    Confidentiality(frozenset({frozenset({T.TDX}), frozenset({T.SEV_SNP})})),
    Confidentiality(frozenset({frozenset({T.SGX})})),
)
MODELS = ("detector-bf16", "detector-int8", "classifier-bf16")


def synthetic_snapshot(n_nodes: int, n_workloads: int, seed: int = 0, load: float = 0.4,
                       objective: str = "energy", time_budget_s: float = 10.0, gpu_workloads: bool = True):
    """A snapshot whose total demand uses about `load` of the cluster's best-case capacity."""
    rng = np.random.default_rng(seed)
    class_idx = rng.choice(len(CLASSES), size=n_nodes, p=CLASS_WEIGHTS)
    zones = list(ZONES)
    nodes = []
    for i, ci in enumerate(class_idx):
        cls = CLASSES[ci]
        nodes.append(Node(name=f"node-{i:05d}", node_class=cls.name, zone=zones[i % len(zones)],
                          tee_ready=cls.tee_kinds,
                          allocatable=Resources(cls.cores * 1000 - 500, int(cls.memory_gib * 1024) - 2048, cls.gpu_count),
                          powered_on=bool(rng.random() < 0.7)))
    total_cores = sum(CLASSES[ci].cores for ci in class_idx)
    workloads = []
    for j in range(n_workloads):
        gpu = gpu_workloads and j % 10 == 9
        req = Confidentiality(frozenset({frozenset({T.SEV_SNP, T.NVIDIA_CC})})) if gpu else REQUIREMENTS[j % len(REQUIREMENTS)]
        cpu = int(rng.choice([2, 4, 8]))
        # demand in cores-worth: spread `load` of the cluster over the workloads, at ~3 fps per core
        fps = float(rng.uniform(0.5, 1.5) * load * total_cores * 3.0 / n_workloads) * (0.3 if gpu else 1.0)
        workloads.append(Workload(
            name=f"wl-{j:03d}", namespace="bench", model_type="segmenter-bf16" if gpu else MODELS[j % len(MODELS)],
            sla=Sla(fps_per_stream=15.0, latency_ms=400.0), demand=Demand(total_fps=round(fps, 1)),
            confidentiality=req, footprint=Resources(cpu * 1000, cpu * 2048, 1 if gpu else 0),
            min_replicas=0, max_replicas=100_000))
    carbon = {z: CarbonReading(z, ci, 0.0, "synthetic") for z, ci in ZONES.items()}
    return build_snapshot(0.0, {c.name: c for c in CLASSES}, nodes, workloads, carbon=carbon,
                          objective=Objective(objective), settings=PlannerSettings(time_budget_s=time_budget_s))
