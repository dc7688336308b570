"""Kepler-format, FPS and kube-state-metrics series generated from a known ground truth.

Each (workload, node class) pair has a true replica power curve P(fps) = c0 + c1 fps + c2 fps^2
and a capacity. Offered FPS per pod changes every `block_s`; delivered FPS is capped at capacity
and the rest is dropped. Kepler's energy counter integrates the true power. Faults can be
injected: counter spikes (kilowatts for one scrape), a counter reset, a gap in one pod's series,
a VM node whose pods report zero power, and a Kepler restart on one node (every counter of that
node starts again from zero at once). GPU power follows Kepler's schemas: 0.10+ (from 0.11.4)
`kepler_pod_gpu_joules_total` and the gauge `kepler_node_gpu_watts` (labels gpu, vendor, no zone);
0.9 `kepler_container_gpu_joules_total` and `kepler_node_gpu_joules_total` (with mode).

`generate_moving` describes a StatefulSet pod rescheduled from one node class to another halfway.
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
    gpu_w: float = 0.0              # constant GPU power per pod, and the node GPU power it adds up to
    node_gpu: bool = True           # with gpu_w: export the node's GPU power too
    restart_node: str = ""          # Kepler restarts on this node halfway: all its counters reset at once
    containers: int = 1             # Kepler 0.9: containers per pod, sharing its energy


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


def _restarted(counter: np.ndarray, k: int) -> np.ndarray:
    """The counter of an exporter restarted at index k: from there it counts again from near zero."""
    out = counter.copy()
    out[k:] -= counter[k - 1]
    return out


def true_power_w(workload: str, node_class: str, fps, truth: dict | None = None):
    c0, c1, c2, _ = {**TRUTH, **(truth or {})}[(workload, node_class)]
    fps = np.asarray(fps, dtype=float)
    return c0 + c1 * fps + c2 * fps**2


def generate(schema: str, start_s: float, duration_s: float, faults: Faults | None = None, seed: int = 7,
             block_s: float = 300.0, truth: dict | None = None) -> tuple[str, Cluster]:
    """OpenMetrics text (ending in `# EOF`) and the cluster it describes. `truth` overrides
    entries of TRUTH (a workload whose cost changed)."""
    faults = faults or Faults()
    truth = {**TRUTH, **(truth or {})}
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
        c0, c1, c2, cap = truth[(p["workload"], truth_cls)]
        n_blocks = int(duration_s // block_s) + 1
        offered_blocks = rng.uniform(0.15 * cap, 1.15 * cap, n_blocks)
        offered = offered_blocks[((t - start_s) // block_s).astype(int)]
        delivered = np.minimum(offered, cap)
        dropped = offered - delivered
        power = true_power_w(p["workload"], truth_cls, delivered, truth) * (1 + rng.normal(0, 0.01, len(t)))
        if p["node"] == "vm-1":
            power = np.zeros(len(t))
        node_power_w[p["node"]] += power
        increments = np.concatenate([[0.0], power[1:] * SCRAPE_S])
        if faults.spikes and i == 0:
            for k in rng.choice(np.arange(40, len(t) - 40), faults.spikes, replace=False):
                increments[k] += 3.0e9  # megawatts for one scrape: the "kW to PW on a small node" glitch
        energy = np.cumsum(increments) + 1000.0
        gpu_energy = faults.gpu_w * SCRAPE_S * np.arange(len(t)) + 50.0
        keep = np.ones(len(t), dtype=bool)
        if faults.reset and i == 1:
            k = len(t) // 3
            energy[k:] -= energy[k] - power[k] * SCRAPE_S  # restarts near zero
        if p["node"] == faults.restart_node:
            energy = _restarted(energy, len(t) // 2)
            gpu_energy = _restarted(gpu_energy, len(t) // 2)
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
                add("kepler_pod_gpu_joules", "counter", "kepler_pod_gpu_joules_total",
                    {**base, "gpu": "0", "vendor": "nvidia"}, gpu_energy[keep], t[keep])
        else:
            shares = [0.7, 0.3] if faults.containers == 2 else [1.0 / faults.containers] * faults.containers
            for c, share in enumerate(shares):
                base = {"container_name": "inference" if c == 0 else f"sidecar-{c}", "container_namespace": NAMESPACE,
                        "pod_name": p["pod"], "instance": p["node"]}
                add("kepler_container_package_joules", "counter", "kepler_container_package_joules_total",
                    {**base, "mode": "dynamic"}, (share * energy)[keep], t[keep])
                add("kepler_container_package_joules", "counter", "kepler_container_package_joules_total",
                    {**base, "mode": "idle"}, (0.5 * share * energy)[keep], t[keep])
                add("kepler_container_dram_joules", "counter", "kepler_container_dram_joules_total",
                    {**base, "mode": "dynamic"}, (0.3 * share * energy)[keep], t[keep])
                if faults.gpu_w:
                    add("kepler_container_gpu_joules", "counter", "kepler_container_gpu_joules_total",
                        {**base, "mode": "dynamic"}, (share * gpu_energy)[keep], t[keep])
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
    gpu_pods = {n: sum(p["node"] == n for p in pods) for n in NODES}
    for node, labels in NODES.items():
        node_energy = np.cumsum(np.concatenate([[0.0], (node_power_w[node] + 5.0)[1:] * SCRAPE_S]))
        node_gpu_w = 30.0 + faults.gpu_w * gpu_pods[node]  # idle draw of the GPU, plus its pods
        node_gpu_energy = node_gpu_w * SCRAPE_S * np.arange(len(t))
        if node == faults.restart_node:
            node_energy = _restarted(node_energy, len(t) // 2)
            node_gpu_energy = _restarted(node_gpu_energy, len(t) // 2)
        if schema == "0.10":
            add("kepler_node_cpu_joules", "counter", "kepler_node_cpu_joules_total",
                {"node_name": node, "path": "/sys/class/powercap/intel-rapl:0", "zone": "package"}, node_energy)
            if faults.gpu_w and faults.node_gpu:
                add("kepler_node_gpu_watts", "gauge", "kepler_node_gpu_watts",
                    {"node_name": node, "gpu": "0", "gpu_uuid": f"GPU-{node}-0", "vendor": "nvidia"},
                    np.full(len(t), node_gpu_w))
        else:
            add("kepler_node_package_joules", "counter", "kepler_node_package_joules_total",
                {"instance": node, "mode": "dynamic"}, 0.6 * node_energy)
            add("kepler_node_package_joules", "counter", "kepler_node_package_joules_total",
                {"instance": node, "mode": "idle"}, 0.4 * node_energy)
            if faults.gpu_w and faults.node_gpu:
                for mode, share in (("dynamic", 0.8), ("idle", 0.2)):
                    add("kepler_node_gpu_joules", "counter", "kepler_node_gpu_joules_total",
                        {"instance": node, "mode": mode}, share * node_gpu_energy)
        add("kube_node_labels", "gauge", "kube_node_labels", {"node": node, **labels}, np.ones(len(t)))
    out = []
    for family, (kind, lines) in fam.items():
        out.append(f"# TYPE {family} {kind}")
        out.extend(lines)
    out.append("# EOF")
    return "\n".join(out) + "\n", Cluster(start_s=float(t[0]), end_s=float(t[-1]), pods=pods)


MOVE_GAP_S = 60.0  # the StatefulSet pod is recreated on the other node a minute after it left


def generate_moving(schema: str, start_s: float, duration_s: float, *, kepler_instance: str = "node",
                    seed: int = 11, block_s: float = 300.0, ksm_honor_labels: bool = True) -> tuple[str, dict]:
    """A StatefulSet pod `detector-0` on node-a1 (intel-amx-tdx) for the first half, then, after
    MOVE_GAP_S, on node-b1 (amd-sev-snp): same name, new UID. On A it serves many frames at little
    power per frame, on B fewer at more, so lumping both halves into one pair would show power
    falling as FPS rises. A classifier pod stays on node-a1 all along.

    Kepler 0.10 places the pod by `node_name`, and keeps the old pod's series on node-a1 for ten
    minutes as `state="terminated"` (a frozen counter). Kepler 0.9 places it by `instance`: the
    node name (`kepler_instance="node"`, as Kepler's ServiceMonitor relabels it) or the exporter's
    address (`"address"`), when only kube_pod_info can say where the pod was.

    `ksm_honor_labels` False: kube-state-metrics scraped as a ServiceMonitor does by default,
    without honor_labels: its pod series keep the scrape target's `namespace`, `pod` (its own pod)
    and `service`, and the pods' own are renamed `exported_namespace`/`exported_pod`.

    Returns OpenMetrics text and {"mid_s", "moved_s", "end_s", "start_s", "delivered": {(node): (t, fps)}}.
    """
    rng = np.random.default_rng(seed)
    t = start_s + np.arange(0, duration_s + 1, SCRAPE_S, dtype=float)
    mid_s = start_s + (duration_s // 2 // SCRAPE_S) * SCRAPE_S
    moved_s = mid_s + MOVE_GAP_S
    address = {"node-a1": "10.0.1.11:9102", "node-b1": "10.0.2.21:9102"}
    kepler_node = {n: (address[n] if kepler_instance == "address" else n) for n in address}
    lines: dict[str, tuple[str, list[str]]] = {}

    def add(family, kind, name, labels, values, times):
        if family in ("kube_pod_info", "kube_pod_labels") and not ksm_honor_labels:
            labels = {**{k: v for k, v in labels.items() if k not in ("namespace", "pod")},
                      "exported_namespace": labels["namespace"], "exported_pod": labels["pod"],
                      "namespace": "monitoring", "pod": "kube-state-metrics-6d4f7b9c8-x2kqp",
                      "service": "kube-state-metrics", "endpoint": "http-metrics"}
        lab = ",".join(f'{k}="{v}"' for k, v in labels.items())
        lines.setdefault(family, (kind, []))[1].extend(
            f"{name}{{{lab}}} {v:.6f} {ts:.3f}" for ts, v in zip(times, values))

    def kepler_pod(node, pod, uid, times, power_w, state="running", energy=None):
        if energy is None:
            energy = np.cumsum(np.concatenate([[0.0], power_w[1:] * SCRAPE_S])) + 10.0
        if schema == "0.10":
            add("kepler_pod_cpu_joules", "counter", "kepler_pod_cpu_joules_total",
                {"node_name": node, "pod_id": uid, "pod_name": pod, "pod_namespace": NAMESPACE, "state": state,
                 "zone": "package"}, energy, times)
        else:
            base = {"container_name": "inference", "container_namespace": NAMESPACE, "pod_name": pod,
                    "instance": kepler_node[node]}
            add("kepler_container_package_joules", "counter", "kepler_container_package_joules_total",
                {**base, "mode": "dynamic"}, energy, times)
        return energy

    def offered(times, lo, hi):
        blocks = rng.uniform(lo, hi, int(duration_s // block_s) + 2)
        return blocks[((times - start_s) // block_s).astype(int)]

    node_power = {n: np.full(len(t), 40.0) for n in address}
    delivered = {}
    segments = (("node-a1", "intel-amx-tdx", t < mid_s, "uid-a", 18.0, 32.0),
                ("node-b1", "amd-sev-snp", t >= moved_s, "uid-b", 3.0, 20.0))
    fps_t, fps_v, drop_v = [], [], []
    for node, cls, mask, uid, lo, hi in segments:
        times = t[mask]
        cap = TRUTH[("detector", cls)][3]
        want = offered(times, lo, hi * 1.1)
        fps = np.minimum(want, cap)
        power = true_power_w("detector", cls, fps) * (1 + rng.normal(0, 0.01, len(times)))
        energy = kepler_pod(node, "detector-0", uid, times, power)
        node_power[node][mask] += power
        delivered[node] = (times, fps)
        fps_t.append(times), fps_v.append(fps), drop_v.append(want - fps)
        add("kube_pod_info", "gauge", "kube_pod_info", {"namespace": NAMESPACE, "pod": "detector-0", "node": node,
                                                        "uid": uid, "created_by_kind": "StatefulSet"},
            np.ones(len(times)), times)
        if schema == "0.10" and node == "node-a1":  # Kepler 0.10 keeps the terminated pod's last count a while
            later = t[(t >= mid_s) & (t < mid_s + 600)]
            kepler_pod(node, "detector-0", uid, later, None, state="terminated", energy=np.full(len(later), energy[-1]))
    all_t, all_fps = np.concatenate(fps_t), np.concatenate(fps_v)
    add("infer_fps", "gauge", "infer_fps", {"namespace": NAMESPACE, "pod": "detector-0"}, all_fps, all_t)
    add("drop_fps", "gauge", "drop_fps", {"namespace": NAMESPACE, "pod": "detector-0"}, np.concatenate(drop_v), all_t)
    add("kube_pod_labels", "gauge", "kube_pod_labels", {"namespace": NAMESPACE, "pod": "detector-0",
                                                        "label_app_kubernetes_io_name": "detector"},
        np.ones(len(all_t)), all_t)

    cls_fps = np.minimum(offered(t, 10.0, 90.0), 90.0)
    cls_power = true_power_w("classifier", "intel-amx-tdx", cls_fps)
    kepler_pod("node-a1", "classifier-5f7c9d8b4-a1cla", "uid-c", t, cls_power)
    node_power["node-a1"] += cls_power
    for name, values in (("infer_fps", cls_fps), ("drop_fps", np.zeros(len(t)))):
        add(name, "gauge", name, {"namespace": NAMESPACE, "pod": "classifier-5f7c9d8b4-a1cla"}, values, t)
    add("kube_pod_info", "gauge", "kube_pod_info", {"namespace": NAMESPACE, "pod": "classifier-5f7c9d8b4-a1cla",
                                                    "node": "node-a1", "uid": "uid-c"}, np.ones(len(t)), t)
    add("kube_pod_labels", "gauge", "kube_pod_labels", {"namespace": NAMESPACE, "pod": "classifier-5f7c9d8b4-a1cla",
                                                        "label_app_kubernetes_io_name": "classifier"}, np.ones(len(t)), t)
    for node in address:
        energy = np.cumsum(np.concatenate([[0.0], node_power[node][1:] * SCRAPE_S]))
        if schema == "0.10":
            add("kepler_node_cpu_joules", "counter", "kepler_node_cpu_joules_total",
                {"node_name": node, "path": "/sys/class/powercap/intel-rapl:0", "zone": "package"}, energy, t)
        else:
            add("kepler_node_package_joules", "counter", "kepler_node_package_joules_total",
                {"instance": kepler_node[node], "mode": "dynamic"}, energy, t)
        add("kube_node_labels", "gauge", "kube_node_labels", {"node": node, **NODES[node]}, np.ones(len(t)), t)
    out = []
    for family, (kind, family_lines) in lines.items():
        out.append(f"# TYPE {family} {kind}")
        out.extend(family_lines)
    out.append("# EOF")
    return "\n".join(out) + "\n", {"start_s": float(t[0]), "end_s": float(t[-1]), "mid_s": mid_s,
                                   "moved_s": moved_s, "delivered": delivered}
