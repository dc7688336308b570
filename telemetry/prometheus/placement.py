"""Which node each power sample was measured on, sample by sample.

A pod can change node within a query range: a StatefulSet pod rescheduled onto another node
class keeps its name, and so can a pod whose name is reused. Its samples must then be split
between (workload, class A) and (workload, class B) at the moment it moved, never given one node
for the whole range. Three witnesses, per sample:

- Kepler's own node label on the power series: `node_name` (0.10+), `instance` (0.9, which
  Kepler's ServiceMonitor relabels to the node name). It says where the energy was measured.
- kube-state-metrics' `kube_pod_info{node}` over time: where the API server had the pod.
- A Kepler 0.9 `instance` that is not a node name (no relabelling, e.g. "10.0.1.7:9102") is
  learnt as an alias of the node kube_pod_info names whenever the two agree unambiguously.

Around a move both nodes can report the pod for up to one rate window (the old series still rates,
or a terminated Kepler 0.10 series rates exactly 0 W). Such a sample keeps the row kube_pod_info
confirms, else the only non-zero one; otherwise it is ambiguous, left out and counted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

KEYS = ["namespace", "pod_name", "t_s"]


def kepler_cannot_place(series: list, labels: tuple[str, str, str], known_nodes: set[str]) -> bool:
    """Whether kube_pod_info over time is needed for these Kepler power series (`labels`: their
    namespace, pod and node label names): Kepler's node labels are not all node names
    kube-state-metrics knows (Kepler 0.9 without relabelling), or some pod was reported by more
    than one Kepler (it moved, or a terminated series lingers). Otherwise Kepler's labels alone
    place every sample and the query is saved."""
    namespace_label, pod_label, node_label = labels
    nodes_of: dict[tuple[str, str], set[str]] = {}
    for one in series:
        key = (one.labels.get(namespace_label, ""), one.labels.get(pod_label, ""))
        nodes_of.setdefault(key, set()).add(one.labels.get(node_label, ""))
    seen = set().union(*nodes_of.values()) if nodes_of else set()
    return not known_nodes or not seen <= known_nodes or any(len(n) > 1 for n in nodes_of.values())


def unique_info_nodes(pod_nodes: pd.DataFrame) -> pd.DataFrame:
    """(namespace, pod_name, t_s, info_node) where kube_pod_info names exactly one node."""
    if pod_nodes.empty:
        return pd.DataFrame({"namespace": pd.Series(dtype=object), "pod_name": pd.Series(dtype=object),
                             "t_s": pd.Series(dtype=float), "info_node": pd.Series(dtype=object)})
    g = pod_nodes.groupby(KEYS, sort=False)["node"].agg(["first", "nunique"]).reset_index()
    g = g[g["nunique"] == 1]
    return g.rename(columns={"first": "info_node"})[KEYS + ["info_node"]]


def kepler_aliases(power: pd.DataFrame, info: pd.DataFrame, known_nodes: set[str]) -> dict[str, str]:
    """Kepler node labels that are not node names -> the node kube_pod_info most often places the
    pod on when that label is the pod's only Kepler series at that time."""
    odd = power[~power["kepler_node"].isin(known_nodes)]
    if odd.empty or info.empty:
        return {}
    single = odd[odd.groupby(KEYS, sort=False)["kepler_node"].transform("size") == 1]
    seen = single.merge(info, on=KEYS, how="inner")
    if seen.empty:
        return {}
    votes = seen.groupby(["kepler_node", "info_node"]).size().reset_index(name="n")
    best = votes.sort_values("n", ascending=False).drop_duplicates("kepler_node")
    return dict(zip(best["kepler_node"], best["info_node"]))


def place_power_samples(power: pd.DataFrame, pod_nodes: pd.DataFrame,
                        known_nodes: set[str]) -> tuple[pd.DataFrame, dict[str, str]]:
    """`power`: one row per (namespace, pod_name, kepler_node, t_s) with `power_w` (other columns
    are carried along). `pod_nodes`: (namespace, pod_name, node, t_s) from kube_pod_info, maybe
    empty. `known_nodes`: node names kube-state-metrics knows (empty: trust Kepler's labels).

    Returns one row per (namespace, pod_name, t_s) with `node` (the node the sample belongs to)
    and `ambiguous` (True: several nodes reported the pod and nothing decides; `power_w` is NaN
    and `node` is kube_pod_info's if it names one, else ""), plus the learnt aliases.
    """
    info = unique_info_nodes(pod_nodes)
    aliases = kepler_aliases(power, info, known_nodes)
    df = power.merge(info, on=KEYS, how="left")
    kepler = df["kepler_node"].astype(object)
    is_node = kepler.isin(known_nodes) if known_nodes else pd.Series(True, index=df.index)
    alias = kepler.map(aliases)
    df["node"] = np.where(is_node, kepler, np.where(alias.notna(), alias,
                                                    np.where(df["info_node"].notna(), df["info_node"], kepler)))
    n_rows = df.groupby(KEYS, sort=False)["node"].transform("size").to_numpy()
    single, multi = df[n_rows == 1], df[n_rows > 1]
    if multi.empty:
        out = single.assign(ambiguous=False)
    else:
        out = pd.concat([single.assign(ambiguous=False), _resolve(multi)], ignore_index=True)
    return out.drop(columns=["info_node"]).reset_index(drop=True), aliases


def _resolve(multi: pd.DataFrame) -> pd.DataFrame:
    """Samples reported from several nodes: keep the one kube_pod_info confirms, else the only
    one drawing power; otherwise one ambiguous row per sample."""
    confirmed = multi["node"] == multi["info_node"]
    n_confirmed = confirmed.groupby([multi[k] for k in KEYS], sort=False).transform("sum")
    keep = confirmed & (n_confirmed == 1)
    undecided = (n_confirmed != 1).to_numpy()
    drawing = multi["power_w"].to_numpy(dtype=float) > 0
    n_drawing = pd.Series(drawing, index=multi.index).groupby([multi[k] for k in KEYS], sort=False).transform("sum")
    keep |= pd.Series(undecided & drawing & (n_drawing.to_numpy() == 1), index=multi.index)
    resolved_keys = multi.loc[keep, KEYS]
    kept = multi[keep]
    rest = multi.merge(resolved_keys.drop_duplicates(), on=KEYS, how="left", indicator=True)
    rest = rest[rest["_merge"] == "left_only"].drop(columns="_merge").drop_duplicates(KEYS)
    rest = rest.assign(power_w=np.nan, node=rest["info_node"].fillna(""), kepler_node="", ambiguous=True)
    for col in rest.columns:
        if col.endswith("_w") and col != "power_w":
            rest[col] = np.nan
    return pd.concat([kept.assign(ambiguous=False), rest], ignore_index=True)
