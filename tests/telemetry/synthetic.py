"""Kepler-format, FPS and kube-state-metrics series generated from a known ground truth.

Each (workload, node class) pair has a true replica power curve P(fps) = c0 + c1 fps + c2 fps^2
and a capacity. Offered FPS per pod changes every `block_s`; delivered FPS is capped at capacity
and the rest is dropped. Kepler's energy counter integrates the true power. Faults can be
injected: counter spikes (kilowatts for one scrape), a counter reset, a gap in one pod's series,
and a VM node whose pods report zero power.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SCRAPE_S = 15

NODES = {  # node -> kube-state-metrics labels (label_<sanitised key>)
    "node-a1": {"label_feature_node_kubernetes_io_cpu_model_vendor_id": "GenuineIntel",
                "label_feature_node_kubernetes_io_cpu_cpuid_AMXTILE": "true",
                "label_feature_node_kubernetes_io_cpu_security_tdx_enabled": "true"},
    "node-a2": {"label_feature_node_kubernetes_io_cpu_model_vendor_id": "GenuineIntel",
                "label_feature_node_kubernetes_io_cpu_cpuid_AMXTILE": "true",
                "label_feature_node_kubernetes_io_cpu_security_tdx_enabled": "true"},
    "node-b1": {"label_feature_node_kubernetes_io_cpu_model_vendor_id": "AuthenticAMD",
                "label_feature_node_kubernetes_io_cpu_security_sev_snp_enabled": "true"},
    "vm-1": {"label_node_kubernetes_io_instance_type": "vm.small"},
}
CLASS_OF = {"node-a1": "intel-amx-tdx", "node-a2": "intel-amx-tdx", "node-b1": "amd-sev-snp", "vm-1": "vm.small"}

# (workload name, node class) -> (c0 W, c1 W/fps, c2 W/fps^2, capacity fps)
TRUTH = {
    ("detector", "intel-amx-tdx"): (12.0, 1.6, 0.010, 32.0),
    ("detector", "amd-sev-snp"): (18.0, 3.1, 0.030, 20.0),
    ("classifier", "intel-amx-tdx"): (6.0, 0.45, 0.002, 90.0),
    ("classifier", "amd-sev-snp"): (8.0, 0.80, 0.004, 60.0),
}
NAMESPACE = "video"


@dataclass
class Faults:
    spikes: int = 0                 # scrapes where a pod counter jumps by kilojoules
    reset: bool = False             # one pod's counter restarts from zero mid-run
    gap_s: float = 0.0              # one pod's series missing for this long
    vm_zero_power: bool = False     # a detector pod on a VM that has no RAPL (zero power)
    gpu_w: float = 0.0              # Kepler 0.10+: constant GPU power per pod (kepler_pod_gpu_joules_total)


@dataclass
class Cluster:
    start_s: float
    end_s: float
    pods: list[dict] = field(default_factory=list)


def _pods(vm: bool) -> list[dict]:
    pods = []
    for node in ("node-a1", "node-a2", "node-b1") + (("vm-1",) if vm else ()):
        for workload in ("detector", "classifier"):
            if node == "vm-1" and workload == "classifier":
                continue
            suffix = node.replace("-", "")[-2:] + workload[:3]  # five characters, like a ReplicaSet pod
            pods.append({"workload": workload, "node": node, "pod": f"{workload}-5f7c9d8b4-{suffix}"})
    return pods


def true_power_w(workload: str, node_class: str, fps):
    c0, c1, c2, _ = TRUTH[(workload, node_class)]
    fps = np.asarray(fps, dtype=float)
    return c0 + c1 * fps + c2 * fps**2


def generate(schema: str, start_s: float, duration_s: float, faults: Faults | None = None, seed: int = 7,
             block_s: float = 300.0) -> tuple[str, Cluster]:
    """OpenMetrics text (ending in `# EOF`) and the cluster it describes."""
    faults = faults or Faults()
    rng = np.random.default_rng(seed)
    t = start_s + np.arange(0, duration_s + 1, SCRAPE_S, dtype=float)
    pods = _pods(faults.vm_zero_power)
    fam: dict[str, tuple[str, list[str]]] = {}

    def add(family: str, kind: str, name: str, labels: dict, values, times=t):
        lab = ",".join(f'{k}="{v}"' for k, v in labels.items())
        lines = fam.setdefault(family, (kind, []))[1]
        lines.extend(f"{name}{{{lab}}} {v:.6f} {ts:.3f}" for ts, v in zip(times, values))

    node_power_w = {n: np.full(len(t), 40.0 if n != "vm-1" else 0.0) for n in NODES}  # idle draw
    for i, p in enumerate(pods):
        cls = CLASS_OF[p["node"]]
        truth_cls = cls if cls in ("intel-amx-tdx", "amd-sev-snp") else "intel-amx-tdx"
        c0, c1, c2, cap = TRUTH[(p["workload"], truth_cls)]
        n_blocks = int(duration_s // block_s) + 1
        offered_blocks = rng.uniform(0.15 * cap, 1.15 * cap, n_blocks)
        offered = offered_blocks[((t - start_s) // block_s).astype(int)]
        delivered = np.minimum(offered, cap)
        dropped = offered - delivered
        power = true_power_w(p["workload"], truth_cls, delivered) * (1 + rng.normal(0, 0.01, len(t)))
        if p["node"] == "vm-1":
            power = np.zeros(len(t))
        node_power_w[p["node"]] += power
        increments = np.concatenate([[0.0], power[1:] * SCRAPE_S])
        if faults.spikes and i == 0:
            for k in rng.choice(np.arange(40, len(t) - 40), faults.spikes, replace=False):
                increments[k] += 3.0e9  # megawatts for one scrape: the "kW to PW on a small node" glitch
        energy = np.cumsum(increments) + 1000.0
        keep = np.ones(len(t), dtype=bool)
        if faults.reset and i == 1:
            k = len(t) // 3
            energy[k:] -= energy[k] - power[k] * SCRAPE_S  # restarts near zero
        if faults.gap_s and i == 2:
            k = len(t) // 2
            keep[k:k + int(faults.gap_s // SCRAPE_S)] = False
        p.update(delivered=delivered, dropped=dropped, power_w=power)
        if schema == "0.10":
            base = {"node_name": p["node"], "pod_id": f"uid-{i}", "pod_name": p["pod"], "pod_namespace": NAMESPACE,
                    "state": "running"}
            add("kepler_pod_cpu_joules", "counter", "kepler_pod_cpu_joules_total", {**base, "zone": "package"},
                energy[keep], t[keep])
            add("kepler_pod_cpu_joules", "counter", "kepler_pod_cpu_joules_total", {**base, "zone": "dram"},
                (0.3 * energy)[keep], t[keep])
            if faults.gpu_w:
                add("kepler_pod_gpu_joules", "counter", "kepler_pod_gpu_joules_total", base,
                    (faults.gpu_w * SCRAPE_S * np.arange(len(t)))[keep], t[keep])
        else:
            base = {"container_name": "inference", "container_namespace": NAMESPACE, "pod_name": p["pod"],
                    "instance": p["node"]}
            add("kepler_container_package_joules", "counter", "kepler_container_package_joules_total",
                {**base, "mode": "dynamic"}, energy[keep], t[keep])
            add("kepler_container_package_joules", "counter", "kepler_container_package_joules_total",
                {**base, "mode": "idle"}, (0.5 * energy)[keep], t[keep])
            add("kepler_container_dram_joules", "counter", "kepler_container_dram_joules_total",
                {**base, "mode": "dynamic"}, (0.3 * energy)[keep], t[keep])
        gauge_labels = {"namespace": NAMESPACE, "pod": p["pod"]}
        add("infer_fps", "gauge", "infer_fps", gauge_labels, delivered[keep], t[keep])
        add("drop_fps", "gauge", "drop_fps", gauge_labels, dropped[keep], t[keep])
        add("kube_pod_info", "gauge", "kube_pod_info", {"namespace": NAMESPACE, "pod": p["pod"], "node": p["node"],
                                                        "uid": f"uid-{i}"}, np.ones(len(t)))
        add("kube_pod_labels", "gauge", "kube_pod_labels", {"namespace": NAMESPACE, "pod": p["pod"],
                                                            "label_app_kubernetes_io_name": p["workload"]}, np.ones(len(t)))
    # A system pod with power but no FPS: must be ignored, not reported as missing FPS.
    sys_energy = np.cumsum(np.full(len(t), 5.0 * SCRAPE_S))
    if schema == "0.10":
        add("kepler_pod_cpu_joules", "counter", "kepler_pod_cpu_joules_total",
            {"node_name": "node-a1", "pod_id": "uid-sys", "pod_name": "coredns-abc", "pod_namespace": "kube-system",
             "state": "running", "zone": "package"}, sys_energy)
    else:
        add("kepler_container_package_joules", "counter", "kepler_container_package_joules_total",
            {"container_name": "coredns", "container_namespace": "kube-system", "pod_name": "coredns-abc",
             "instance": "node-a1", "mode": "dynamic"}, sys_energy)
    for node, labels in NODES.items():
        node_energy = np.cumsum(np.concatenate([[0.0], (node_power_w[node] + 5.0)[1:] * SCRAPE_S]))
        if schema == "0.10":
            add("kepler_node_cpu_joules", "counter", "kepler_node_cpu_joules_total",
                {"node_name": node, "path": "/sys/class/powercap/intel-rapl:0", "zone": "package"}, node_energy)
        else:
            add("kepler_node_package_joules", "counter", "kepler_node_package_joules_total",
                {"instance": node, "mode": "dynamic"}, 0.6 * node_energy)
            add("kepler_node_package_joules", "counter", "kepler_node_package_joules_total",
                {"instance": node, "mode": "idle"}, 0.4 * node_energy)
        add("kube_node_labels", "gauge", "kube_node_labels", {"node": node, **labels}, np.ones(len(t)))
    out = []
    for family, (kind, lines) in fam.items():
        out.append(f"# TYPE {family} {kind}")
        out.extend(lines)
    out.append("# EOF")
    return "\n".join(out) + "\n", Cluster(start_s=float(t[0]), end_s=float(t[-1]), pods=pods)
