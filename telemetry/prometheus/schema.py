"""The two Kepler metric schemas deployed in the wild, and which one is present.

Kepler 0.10 and later: sustainable-computing-io/kepler, docs/user/metrics.md (GPU metrics from
0.11.4: `kepler_node_gpu_watts` and `kepler_pod_gpu_joules_total`, labels gpu, vendor, state and
the constant node_name, no zone). Kepler up to 0.9: sustainable-computing-io/kepler-doc,
docs/design/metrics.md (`kepler_container_gpu_joules_total`, `kepler_node_gpu_joules_total`; the
node is the `instance` label, which Kepler's ServiceMonitor relabels to the node name).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from wattwise.telemetry.prometheus.errors import NoKeplerData


class KeplerSchema(Enum):
    V0_10 = "0.10"   # Kepler 0.10 and later: kepler_pod_cpu_joules_total, zone label
    V0_9 = "0.9"     # Kepler up to 0.9: kepler_container_*_joules_total, mode label


@dataclass(frozen=True)
class SchemaMetrics:
    """Metric and label names of one schema. Pods get only their share of active power in 0.10;
    in 0.9 we take the `dynamic` mode for the same meaning."""

    pod_cpu_joules: str
    pod_gpu_joules: str
    node_cpu_joules: str
    pod_namespace_label: str
    pod_name_label: str
    kepler_node_label: str
    pod_selector: str         # label matchers for the CPU counter, zone or mode
    pod_gpu_selector: str
    node_selector: str
    node_gpu: str             # the node's GPU power: a gauge in watts, or an energy counter
    node_gpu_is_gauge: bool


METRICS = {
    KeplerSchema.V0_10: SchemaMetrics(
        pod_cpu_joules="kepler_pod_cpu_joules_total", pod_gpu_joules="kepler_pod_gpu_joules_total",
        node_cpu_joules="kepler_node_cpu_joules_total", pod_namespace_label="pod_namespace",
        pod_name_label="pod_name", kepler_node_label="node_name",
        pod_selector='zone="{zone}"', pod_gpu_selector="", node_selector='zone="{zone}"',
        node_gpu="kepler_node_gpu_watts", node_gpu_is_gauge=True),
    KeplerSchema.V0_9: SchemaMetrics(
        pod_cpu_joules="kepler_container_package_joules_total", pod_gpu_joules="kepler_container_gpu_joules_total",
        node_cpu_joules="kepler_node_package_joules_total", pod_namespace_label="container_namespace",
        pod_name_label="pod_name", kepler_node_label="instance",
        pod_selector='mode="dynamic"', pod_gpu_selector='mode="dynamic"', node_selector="",
        node_gpu="kepler_node_gpu_joules_total", node_gpu_is_gauge=False),
}

_MARKERS = {
    KeplerSchema.V0_10: ("kepler_pod_cpu_joules_total", "kepler_node_cpu_joules_total", "kepler_pod_cpu_watts"),
    KeplerSchema.V0_9: ("kepler_container_package_joules_total", "kepler_container_joules_total",
                        "kepler_node_package_joules_total"),
}


def detect_schema(metric_names: list[str] | set[str]) -> KeplerSchema:
    """The schema whose power counters are present. When both are (a cluster mid-upgrade), the newer
    one wins: it is the one still being written."""
    names = set(metric_names)
    for schema in (KeplerSchema.V0_10, KeplerSchema.V0_9):
        if any(m in names for m in _MARKERS[schema]):
            return schema
    kepler = sorted(n for n in names if n.startswith("kepler_"))
    hint = f" (found only {', '.join(kepler[:5])})" if kepler else ""
    raise NoKeplerData("no Kepler power counters in Prometheus for this range" + hint +
                       "; is Kepler deployed and scraped? Expected kepler_pod_cpu_joules_total (0.10+) "
                       "or kepler_container_package_joules_total (0.9 and earlier)")


def has_gpu_metrics(schema: KeplerSchema, metric_names: list[str] | set[str]) -> bool:
    return METRICS[schema].pod_gpu_joules in set(metric_names)


def has_node_gpu_metrics(schema: KeplerSchema, metric_names: list[str] | set[str]) -> bool:
    return METRICS[schema].node_gpu in set(metric_names)
