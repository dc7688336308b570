"""PromQL builders: pure functions from settings to query text.

Rules: rate() the counter first, then sum (Prometheus docs, querying/functions, `rate()`); one
zone (package), never a sum of zones, as package already includes core and uncore (Kepler's
docs/user/metrics.md, "zone"); a rate window of at least four scrape intervals, so that one failed
scrape still leaves two samples (Robust Perception, "What range should I use with rate()?").
"""

from __future__ import annotations

import re

from wattwise.telemetry.prometheus.schema import METRICS, KeplerSchema

MIN_SCRAPES_PER_WINDOW = 4


def rate_window_s(scrape_interval_s: float, step_s: float) -> int:
    """Window for rate(): four scrapes at least, and never shorter than the step (no blind spots)."""
    if scrape_interval_s <= 0 or step_s <= 0:
        raise ValueError("scrape_interval_s and step_s must be positive")
    return int(max(MIN_SCRAPES_PER_WINDOW * scrape_interval_s, step_s) + 0.999)


def _selector(metric: str, matchers: str) -> str:
    return f"{metric}{{{matchers}}}" if matchers else metric


def _duration(seconds: float) -> str:
    return f"{max(1, int(round(seconds)))}s"


def check_label_value(value: str) -> str:
    """Label values inserted into queries must not break out of the quotes."""
    if not re.fullmatch(r"[A-Za-z0-9_.:/-]*", value):
        raise ValueError(f"unsafe label value {value!r}")
    return value


def pod_power_w(schema: KeplerSchema, window_s: float, zone: str = "package", gpu: bool = False,
                only_pods_of: tuple[str, str, str] | None = None, seen_within_s: float = 3600) -> str:
    """Per-pod power (W) from the energy counter, keeping Kepler's own node label.

    `only_pods_of` = (FPS metric, its namespace label, its pod label) keeps only pods that reported
    FPS within `seen_within_s`: Kepler reports every pod on every node, and most are not inference
    pods; filtering in Prometheus cuts the bytes fetched by about two thirds on a typical cluster,
    while a pod whose FPS is briefly missing still shows up (and is counted as `missing_fps`).
    """
    m = METRICS[schema]
    metric = m.pod_gpu_joules if gpu else m.pod_cpu_joules
    matchers = m.pod_gpu_selector if gpu else m.pod_selector.format(zone=check_label_value(zone))
    by = f"{m.pod_namespace_label}, {m.pod_name_label}, {m.kepler_node_label}"
    query = f"sum by ({by}) (rate({_selector(metric, matchers)}[{_duration(window_s)}]))"
    if only_pods_of:
        query = _only_pods(query, only_pods_of, m.pod_namespace_label, m.pod_name_label, seen_within_s)
    return query


def _only_pods(query: str, only_pods_of: tuple[str, str, str], namespace_label: str, pod_label: str,
               seen_within_s: float) -> str:
    """`query` restricted to the pods that reported FPS within `seen_within_s`, matched on
    (`namespace_label`, `pod_label`) of `query`'s result."""
    fps_metric, fps_ns_label, fps_pod_label = only_pods_of
    pods = f"group by ({fps_ns_label}, {fps_pod_label}) (last_over_time({fps_metric}[{_duration(seen_within_s)}]))"
    if fps_ns_label != namespace_label:
        pods = f'label_replace({pods}, "{namespace_label}", "$1", "{fps_ns_label}", "(.*)")'
    if fps_pod_label != pod_label:
        pods = f'label_replace({pods}, "{pod_label}", "$1", "{fps_pod_label}", "(.*)")'
    return f"{query} and on ({namespace_label}, {pod_label}) {pods}"


def node_power_w(schema: KeplerSchema, window_s: float, zone: str = "package") -> str:
    m = METRICS[schema]
    matchers = m.node_selector.format(zone=check_label_value(zone))
    return (f"sum by ({m.kepler_node_label}) "
            f"(rate({_selector(m.node_cpu_joules, matchers)}[{_duration(window_s)}]))")


def node_gpu_power_w(schema: KeplerSchema, window_s: float) -> str:
    """GPU power per node: Kepler 0.10+ exports a gauge per GPU (averaged over the window), Kepler
    0.9 an energy counter (rated, summed over its modes like the node's package counter)."""
    m = METRICS[schema]
    fn = "avg_over_time" if m.node_gpu_is_gauge else "rate"
    return f"sum by ({m.kepler_node_label}) ({fn}({m.node_gpu}[{_duration(window_s)}]))"


def reset_window_s(scrape_interval_s: float, step_s: float) -> int:
    """Window for spotting counter resets at each step: longer than a step by two scrapes, so the
    two samples either side of any reset fall together in at least one window."""
    return int(max(MIN_SCRAPES_PER_WINDOW * scrape_interval_s, step_s + 2 * scrape_interval_s) + 0.999)


def pod_reset_steps(schema: KeplerSchema, window_s: float, zone: str = "package",
                    only_pods_of: tuple[str, str, str] | None = None, seen_within_s: float = 3600) -> str:
    """For a range query: per pod and Kepler node, the steps whose window holds a reset of one of
    its energy counters (only those steps are returned). An exporter restart resets every
    series of its node at once; `hygiene.count_reset_events` counts it once."""
    m = METRICS[schema]
    matchers = m.pod_selector.format(zone=check_label_value(zone))
    by = f"{m.pod_namespace_label}, {m.pod_name_label}, {m.kepler_node_label}"
    query = f"max by ({by}) (resets({_selector(m.pod_cpu_joules, matchers)}[{_duration(window_s)}])) > 0"
    if only_pods_of:
        query = _only_pods(f"({query})", only_pods_of, m.pod_namespace_label, m.pod_name_label, seen_within_s)
    return query


def pod_window_samples(schema: KeplerSchema, window_s: float, zone: str = "package",
                       only_pods_of: tuple[str, str, str] | None = None, seen_within_s: float = 3600) -> str:
    """For a range query: per pod and Kepler node, the samples its energy counter (its most complete
    series) has in each rate window. A window its series covers only in part (the pod started or
    ended inside it, or its exporter came back from a restart) holds fewer, and rate() reads low
    there: it extrapolates to the window's edges only half a scrape past the first and last sample."""
    m = METRICS[schema]
    matchers = m.pod_selector.format(zone=check_label_value(zone))
    by = f"{m.pod_namespace_label}, {m.pod_name_label}, {m.kepler_node_label}"
    query = f"max by ({by}) (count_over_time({_selector(m.pod_cpu_joules, matchers)}[{_duration(window_s)}]))"
    if only_pods_of:
        query = _only_pods(query, only_pods_of, m.pod_namespace_label, m.pod_name_label, seen_within_s)
    return query


def pod_counter_resets(schema: KeplerSchema, range_s: float, zone: str = "package") -> str:
    """Counter resets per pod over a range, for the hygiene report (rate() already handles them)."""
    m = METRICS[schema]
    matchers = m.pod_selector.format(zone=check_label_value(zone))
    return (f"sum by ({m.pod_namespace_label}, {m.pod_name_label}) "
            f"(resets({_selector(m.pod_cpu_joules, matchers)}[{_duration(range_s)}]))")


def pod_fps(metric: str, window_s: float, counter: bool = False, namespace_label: str = "namespace",
            pod_label: str = "pod") -> str:
    """Delivered FPS per pod: a gauge averaged over the window, or a frames counter rated.

    Averaging the gauge over the window (instead of Prometheus's 5-minute lookback) keeps a
    series that stopped reporting from looking alive. The series one scrape target (`instance`)
    exports at once are summed; of a pod's targets the largest is taken: a pod whose target
    changed inside the window (a StatefulSet pod rescheduled, with a new IP, keeps its name) has
    the old target's series and the new one's there one after the other, and their sum would be
    twice its rate.
    """
    fn = "rate" if counter else "avg_over_time"
    by = f"{namespace_label}, {pod_label}"
    return f"max by ({by}) (sum by ({by}, instance) ({fn}({metric}[{_duration(window_s)}])))"


def pod_fps_while_dropping(fps_metric: str, drop_metric: str, window_s: float, dropping_fraction: float,
                           counter: bool = False, namespace_label: str = "namespace", pod_label: str = "pod",
                           scrape_interval_s: float = 15.0) -> str:
    """Per pod, the FPS it delivered at the times it dropped frames (`drop_metric` above
    `dropping_fraction` of `fps_metric`), averaged over the window; pods that never dropped have
    no result. A subquery judges "dropping" at 20 steps of the window, so a replica saturated for
    part of the window shows what it delivers when saturated, not a mix with the rest. Counters
    are read at each step by `irate` (the rate between the last two scrapes, over a window of at
    least `MIN_SCRAPES_PER_WINDOW` scrapes, so a missed scrape still leaves two): a `rate` over
    the step alone (3 s of a 60 s window) holds at most one sample of a 15 s scrape, and none
    answers; one over several scrapes would blur a short burst into the scrapes around it."""
    step_s = max(1, int(round(window_s / 20)))
    by = f"{namespace_label}, {pod_label}"
    counter_window = _duration(rate_window_s(scrape_interval_s, step_s))

    def now(metric: str) -> str:
        inner = f"irate({metric}[{counter_window}])" if counter else metric
        return f"sum by ({by}) ({inner})"

    fps = now(fps_metric)
    return (f"avg_over_time(({fps} and on ({by}) ({now(drop_metric)} > {dropping_fraction:g} * {fps}))"
            f"[{_duration(window_s)}:{_duration(step_s)}])")


def ksm_pod(vector: str) -> str:
    """kube-state-metrics' pod series with the pod's own `namespace` and `pod`, however it was
    scraped: with `honor_labels` (kube-prometheus) they are as written; without it (a ServiceMonitor's
    default) Prometheus renamed them `exported_namespace`/`exported_pod` and put the scrape target's
    (kube-state-metrics' own pod) in their place, so every pod would look like that one. An empty
    `exported_*` (honor_labels) matches no `(.+)` and leaves the label as it is."""
    relabelled = f'label_replace({vector}, "namespace", "$1", "exported_namespace", "(.+)")'
    return f'label_replace({relabelled}, "pod", "$1", "exported_pod", "(.+)")'


def pod_info(range_s: float) -> str:
    """Pod to node, for every pod seen in the range (one instant answer: no time)."""
    selected = 'max_over_time(kube_pod_info{node!=""}[' + _duration(range_s) + "])"
    return f"max by (namespace, pod, node) ({ksm_pod(selected)})"


def pod_nodes(only_pods_of: tuple[str, str, str] | None = None, seen_within_s: float = 3600) -> str:
    """For a range query: the node kube-state-metrics places each pod on, at each step, so a pod
    rescheduled onto another node (a StatefulSet pod, a reused name) is placed sample by sample."""
    query = "max by (namespace, pod, node) (" + ksm_pod('kube_pod_info{node!=""}') + ")"
    if only_pods_of:
        query = _only_pods(query, only_pods_of, "namespace", "pod", seen_within_s)
    return query


def pod_labels(label_key: str, range_s: float) -> str:
    name = ksm_label_name(label_key)
    selected = f'max_over_time(kube_pod_labels{{{name}!=""}}[{_duration(range_s)}])'
    return f"max by (namespace, pod, {name}) ({ksm_pod(selected)})"


def node_labels(range_s: float) -> str:
    return f"max_over_time(kube_node_labels[{_duration(range_s)}])"


def ksm_label_name(label_key: str) -> str:
    """kube-state-metrics' name for a Kubernetes label: `label_` plus the key with every character
    outside [A-Za-z0-9_] replaced by `_`."""
    return "label_" + re.sub(r"[^A-Za-z0-9_]", "_", label_key)


# -- node power against utilisation (telemetry/node_curves.py) -----------------------------------

KEPLER_NODE_WATTS = "kepler_node_cpu_watts"              # Kepler 0.10+: gauge, labels zone, path, node_name
KEPLER_NODE_USAGE = "kepler_node_cpu_usage_ratio"       # Kepler 0.10+: gauge 0..1, label node_name
NODE_EXPORTER_CPU = "node_cpu_seconds_total"            # node_exporter: counter, labels cpu, mode, instance
NODE_EXPORTER_UNAME = "node_uname_info"                 # node_exporter: labels nodename (the host name), instance


def node_cpu_power_w(schema: KeplerSchema, window_s: float, zone: str = "package", gauge: bool = False) -> str:
    """The node's CPU power (W) in one zone, summed over its sockets (paths) but never over zones.

    Kepler 0.10+ with `gauge`: its `kepler_node_cpu_watts` averaged over the window; otherwise the
    energy counter rated (`node_power_w`: in 0.9 the package counter's modes, dynamic and idle, summed)."""
    if not gauge:
        return node_power_w(schema, window_s, zone)
    if schema is not KeplerSchema.V0_10:
        raise ValueError("kepler_node_cpu_watts is a Kepler 0.10+ metric")
    return (f'sum by (node_name) (avg_over_time({KEPLER_NODE_WATTS}{{zone="{check_label_value(zone)}"}}'
            f"[{_duration(window_s)}]))")


def kepler_node_utilisation(window_s: float) -> str:
    """Kepler 0.10+'s own CPU usage ratio per node (0..1), averaged over the window like the power."""
    return f"avg by (node_name) (avg_over_time({KEPLER_NODE_USAGE}[{_duration(window_s)}]))"


def node_exporter_utilisation(window_s: float) -> str:
    """node_exporter's CPU utilisation per scrape target (0..1): the share of CPU time in neither
    `idle` nor `iowait` (a CPU waiting for I/O executes nothing), over all CPUs and modes, so the
    CPU count need not be known."""
    w = _duration(window_s)
    return (f'1 - sum by (instance) (rate({NODE_EXPORTER_CPU}{{mode=~"idle|iowait"}}[{w}])) '
            f"/ sum by (instance) (rate({NODE_EXPORTER_CPU}[{w}]))")


def node_exporter_hosts(range_s: float) -> str:
    """node_exporter's scrape target -> the host's name, for targets not relabelled to the node name."""
    return f"max by (instance, nodename) (max_over_time({NODE_EXPORTER_UNAME}[{_duration(range_s)}]))"
