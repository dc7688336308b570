"""Node power that follows a known curve of CPU utilisation, in both Kepler schemas, put in place of
the node power series of `synthetic.generate` (whose pods, FPS and kube-state-metrics stay).

Each node's utilisation changes every `block_s`, uniformly within its class's range in
`UTIL_RANGE`; its CPU package power is `true_node_power_w` of that utilisation, with 1% noise.
- Kepler 0.10+: `kepler_node_cpu_watts` and `kepler_node_cpu_joules_total` for two sockets
  (`path` intel-rapl:0 and :1, zone package, half each) plus a `dram` zone that must not be added,
  and `kepler_node_cpu_usage_ratio`.
- Kepler 0.9: `kepler_node_package_joules_total` split into modes dynamic (70%) and idle (30%),
  and node_exporter's `node_cpu_seconds_total` (4 CPUs; idle, iowait, user, system) scraped at the
  pod's address (`EXPORTER_ADDRESS`), so only `node_uname_info`'s `nodename` names the node.
A VM node (vm-1, when `generate` made one) reports zero package power, as without RAPL.
"""

from __future__ import annotations

import numpy as np

from tests.telemetry.synthetic import CLASS_OF, SCRAPE_S, Cluster

CURVES = {  # class -> watts at 0%, 10%, ..., 100% CPU utilisation (SPECpower-like: a step off idle)
    "intel-amx-tdx": (150.0, 200.0, 222.0, 245.0, 268.0, 290.0, 315.0, 340.0, 372.0, 410.0, 450.0),
    "amd-sev-snp": (120.0, 170.0, 190.0, 212.0, 235.0, 258.0, 282.0, 306.0, 330.0, 355.0, 380.0),
    "vm.small": (0.0,) * 11,
}
UTIL_RANGE = {"intel-amx-tdx": (0.02, 0.98), "amd-sev-snp": (0.35, 0.50), "vm.small": (0.1, 0.9)}
EXPORTER_ADDRESS = {"node-a1": "10.0.1.11:9100", "node-a2": "10.0.1.12:9100", "node-b1": "10.0.2.21:9100",
                    "vm-1": "10.0.3.31:9100"}
CPUS = 4
REPLACED_FAMILIES = ("kepler_node_cpu_joules", "kepler_node_package_joules")


def true_node_power_w(node_class: str, util):
    return np.interp(np.asarray(util, dtype=float), np.linspace(0, 1, 11), CURVES[node_class])


def with_node_power(schema: str, text: str, cluster: Cluster, *, seed: int = 3, block_s: float = 180.0,
                    util_range: dict | None = None) -> str:
    """`text` (from `synthetic.generate`) with its node power replaced as the module notes say."""
    ranges = {**UTIL_RANGE, **(util_range or {})}
    rng = np.random.default_rng(seed)
    t = np.arange(cluster.start_s, cluster.end_s + 1, SCRAPE_S, dtype=float)
    nodes = sorted({p["node"] for p in cluster.pods})
    families: dict[str, tuple[str, list[str]]] = {}

    def add(family, kind, name, labels, values):
        lab = ",".join(f'{k}="{v}"' for k, v in labels.items())
        families.setdefault(family, (kind, []))[1].extend(
            f"{name}{{{lab}}} {v:.6f} {ts:.3f}" for ts, v in zip(t, values))

    def counter(watts):
        return np.cumsum(np.concatenate([[0.0], np.asarray(watts)[1:] * SCRAPE_S])) + 100.0

    for node in nodes:
        cls = CLASS_OF[node]
        lo, hi = ranges[cls]
        blocks = rng.uniform(lo, hi, int((t[-1] - t[0]) // block_s) + 2)
        util = blocks[((t - t[0]) // block_s).astype(int)]
        power = true_node_power_w(cls, util) * (1 + rng.normal(0, 0.01, len(t)))
        if schema == "0.10":
            for socket in (0, 1):
                labels = {"node_name": node, "path": f"/sys/class/powercap/intel-rapl:{socket}"}
                for zone, share in (("package", 0.5), ("dram", 0.1)):
                    add("kepler_node_cpu_watts", "gauge", "kepler_node_cpu_watts", {**labels, "zone": zone},
                        share * power)
                    add("kepler_node_cpu_joules", "counter", "kepler_node_cpu_joules_total", {**labels, "zone": zone},
                        counter(share * power))
            add("kepler_node_cpu_usage_ratio", "gauge", "kepler_node_cpu_usage_ratio", {"node_name": node}, util)
        else:
            for mode, share in (("dynamic", 0.7), ("idle", 0.3)):
                add("kepler_node_package_joules", "counter", "kepler_node_package_joules_total",
                    {"instance": node, "mode": mode}, counter(share * power))
            address = EXPORTER_ADDRESS[node]
            for cpu in range(CPUS):
                for mode, rate in (("idle", 0.97 * (1 - util)), ("iowait", 0.03 * (1 - util)),
                                   ("user", 0.75 * util), ("system", 0.25 * util)):
                    add("node_cpu_seconds", "counter", "node_cpu_seconds_total",
                        {"cpu": str(cpu), "instance": address, "job": "node-exporter", "mode": mode},
                        counter(rate) + 1000.0 * cpu)
            add("node_uname_info", "gauge", "node_uname_info",
                {"instance": address, "job": "node-exporter", "nodename": node, "sysname": "Linux"}, np.ones(len(t)))
    kept = [line for line in text.splitlines()
            if line != "# EOF" and not any(line.startswith((f"# TYPE {f} ", f"{f}_total{{")) for f in REPLACED_FAMILIES)]
    for family, (kind, lines) in families.items():
        kept.append(f"# TYPE {family} {kind}")
        kept.extend(lines)
    kept.append("# EOF")
    return "\n".join(kept) + "\n"
