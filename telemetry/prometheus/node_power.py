"""`PrometheusNodePowerSource`: each node's CPU power and CPU utilisation over a range, the
samples `telemetry/node_curves.py` fits each node class's power curve from.

What is read (`last` says which, and why when nothing could be):
- Power: the node's CPU package power from Kepler, in one zone (`--zone`, default package),
  summed over sockets, never over zones (domain notes, section 5). Kepler 0.10+:
  `kepler_node_cpu_watts` averaged over the rate window, or `kepler_node_cpu_joules_total`
  rated where the gauge is not scraped; Kepler 0.9: `kepler_node_package_joules_total` rated,
  its `dynamic` and `idle` modes summed. Neither DRAM (another zone) nor GPUs are included: the
  planner adds a class's GPU idle power on top of its curve (`NodeClass.idle_w`), and a GPU's
  active power is in the energy models of the pods that use it.
- Utilisation: Kepler 0.10+'s `kepler_node_cpu_usage_ratio` (labelled `node_name`); otherwise
  (Kepler 0.9, which has no node-level utilisation, or a 0.10 without the gauge) node_exporter's
  `node_cpu_seconds_total`: 1 - (idle + iowait) / all CPU time. Kepler 0.9's per-container
  `kepler_container_bpf_cpu_time_*` is not used: it is per container (the node's share needs the
  core count from elsewhere), its unit changed between releases (ms, us), and it lags process
  starts (see `telemetry/node_power_fit.py`).
- node_exporter's `instance` is matched to a node as: the node's name (kube-prometheus and
  OpenShift relabel it so), else the `nodename` of `node_uname_info` for that target (the host
  name, which kubelet uses as node name by default), else the target's host part.

One metric-name lookup, two range queries and, for node_exporter, one instant query.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pandas as pd

from wattwise.telemetry.prometheus import promql
from wattwise.telemetry.prometheus.client import PrometheusClient
from wattwise.telemetry.prometheus.frames import series_frame
from wattwise.telemetry.prometheus.schema import METRICS, KeplerSchema

log = logging.getLogger(__name__)

NODE_SAMPLE_COLUMNS = ("node", "t_s", "power_w", "util")


@dataclass
class NodeFetchInfo:
    power_query: str = ""
    utilisation_from: str = ""       # "kepler" (kepler_node_cpu_usage_ratio), "node_exporter", or "" (none)
    utilisation_query: str = ""
    problem: str = ""                # why there are no samples at all
    exporter_nodes: dict[str, str] = field(default_factory=dict)   # node_exporter instance -> node, where not equal
    unmatched: list[str] = field(default_factory=list)             # node_exporter instances matched to no node

    def as_dict(self) -> dict:
        return {"power_query": self.power_query, "utilisation_from": self.utilisation_from,
                "utilisation_query": self.utilisation_query, "problem": self.problem,
                "node_exporter_instances": dict(sorted(self.exporter_nodes.items())),
                "unmatched_node_exporter_instances": sorted(self.unmatched)}


def _host(instance: str) -> str:
    return instance.rsplit(":", 1)[0] if ":" in instance and not instance.endswith("]") else instance


def match_exporter_nodes(instances: list[str], hosts: dict[str, str], known: set[str]) -> tuple[dict[str, str], list[str]]:
    """node_exporter instance -> node (see the module notes), and the instances matched to none.
    With no known nodes at all, an instance stands for itself (or its host name)."""
    out, unmatched = {}, []
    for instance in instances:
        candidates = [instance, hosts.get(instance, ""), _host(instance)]
        node = next((c for c in candidates if c and c in known), None)
        if node is None and not known:
            node = hosts.get(instance) or instance
        if node is None:
            unmatched.append(instance)
        else:
            out[instance] = node
    return out, unmatched


class PrometheusNodePowerSource:
    def __init__(self, client: PrometheusClient, zone: str = "package", scrape_interval_s: float = 15.0):
        self.client = client
        self.zone = zone
        self.scrape_interval_s = scrape_interval_s
        self.last = NodeFetchInfo()

    def samples(self, start_s: float, end_s: float, step_s: float, schema: KeplerSchema,
                kepler_node_aliases: dict[str, str] | None = None) -> pd.DataFrame:
        """One row per node and step with power or utilisation (NODE_SAMPLE_COLUMNS; NaN where one
        of the two is missing). `kepler_node_aliases`: Kepler node labels that are not node names
        (0.9's `instance` as an address), as the pod fit placed them."""
        info = NodeFetchInfo()
        self.last = info
        names = set(self.client.metric_names(
            '{__name__=~"%s"}' % "|".join((promql.KEPLER_NODE_WATTS, promql.KEPLER_NODE_USAGE,
                                           promql.NODE_EXPORTER_CPU, promql.NODE_EXPORTER_UNAME,
                                           METRICS[schema].node_cpu_joules)), start_s, end_s))
        window_s = promql.rate_window_s(self.scrape_interval_s, step_s)
        gauge = schema is KeplerSchema.V0_10 and promql.KEPLER_NODE_WATTS in names
        if not gauge and METRICS[schema].node_cpu_joules not in names:
            info.problem = (f"no Kepler node power ({METRICS[schema].node_cpu_joules}"
                            + (f" or {promql.KEPLER_NODE_WATTS}" if schema is KeplerSchema.V0_10 else "") +
                            ") in this range")
            return _empty()
        if schema is KeplerSchema.V0_10 and promql.KEPLER_NODE_USAGE in names:
            info.utilisation_from, info.utilisation_query = "kepler", promql.kepler_node_utilisation(window_s)
        elif promql.NODE_EXPORTER_CPU in names:
            info.utilisation_from, info.utilisation_query = "node_exporter", promql.node_exporter_utilisation(window_s)
        else:
            info.problem = ("no node CPU utilisation in this range: "
                            + (f"Kepler 0.10+ exports {promql.KEPLER_NODE_USAGE}; " if schema is KeplerSchema.V0_10
                               else "Kepler 0.9 exports none per node; ")
                            + f"otherwise scrape node_exporter ({promql.NODE_EXPORTER_CPU})")
            return _empty()
        info.power_query = promql.node_cpu_power_w(schema, window_s, self.zone, gauge=gauge)

        kepler_label = METRICS[schema].kepler_node_label
        aliases = kepler_node_aliases or {}
        power = series_frame(self.client.range(info.power_query, start_s, end_s, step_s),
                             {kepler_label: "node"}, "power_w")
        power["node"] = [aliases.get(n, n) for n in power["node"]]
        power = power.groupby(["node", "t_s"], as_index=False)["power_w"].sum()
        util_series = self.client.range(info.utilisation_query, start_s, end_s, step_s)
        if info.utilisation_from == "kepler":
            util = series_frame(util_series, {"node_name": "node"}, "util")
            util["node"] = [aliases.get(n, n) for n in util["node"]]
        else:
            util = series_frame(util_series, {"instance": "node"}, "util")
            instances = sorted(set(util["node"]))
            hosts = {}
            if promql.NODE_EXPORTER_UNAME in names and any(i not in set(power["node"]) for i in instances):
                for r in self.client.instant(promql.node_exporter_hosts(end_s - start_s + window_s), end_s):
                    if r.labels.get("instance") and r.labels.get("nodename"):
                        hosts[r.labels["instance"]] = r.labels["nodename"]
            matched, info.unmatched = match_exporter_nodes(instances, hosts, set(power["node"]))
            info.exporter_nodes = {i: n for i, n in matched.items() if i != n}
            if info.unmatched:
                log.info("node_exporter instances matched to no node with Kepler power: %s", ", ".join(info.unmatched))
            util = util[util["node"].isin(list(matched))].copy()
            util["node"] = [matched[i] for i in util["node"]]
        util = util.groupby(["node", "t_s"], as_index=False)["util"].mean()
        df = power.merge(util, on=["node", "t_s"], how="outer")
        return df[list(NODE_SAMPLE_COLUMNS)].sort_values(["node", "t_s"]).reset_index(drop=True)


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object if c == "node" else float) for c in NODE_SAMPLE_COLUMNS})
