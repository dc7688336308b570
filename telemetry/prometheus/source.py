"""`PrometheusPowerFpsSource`: the live `PowerFpsSource` (models/ports.py) over Kepler, the
application's FPS metric and kube-state-metrics."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np
import pandas as pd

from wattwise.models.labels import DEFAULT_MAPPING, LabelMapping
from wattwise.models.ports import SAMPLE_COLUMNS
from wattwise.telemetry.hygiene import PairCounts, add_counts, count_reset_events
from wattwise.telemetry.prometheus import promql
from wattwise.telemetry.prometheus.client import PrometheusClient, plan_chunks
from wattwise.telemetry.prometheus.errors import NoFpsData, NoKeplerData
from wattwise.telemetry.prometheus.frames import (node_classes_from_labels, series_frame,
                                                  workload_from_pod_name)
from wattwise.telemetry.prometheus.placement import (KEYS, kepler_cannot_place, place_power_samples,
                                                     unique_info_nodes)
from wattwise.telemetry.prometheus.schema import (METRICS, KeplerSchema, detect_schema, has_gpu_metrics,
                                                  has_node_gpu_metrics)

log = logging.getLogger(__name__)

KUBE_METRICS = ("kube_pod_info", "kube_pod_labels", "kube_node_labels")


@dataclass(frozen=True)
class SourceSettings:
    """What to read. Defaults follow the reference pipeline and kube-state-metrics conventions."""

    fps_metric: str = "infer_fps"
    drop_metric: str | None = "drop_fps"
    requested_metric: str | None = None   # per-pod FPS asked of the replica, when the pipeline exports it
    fps_is_counter: bool = False          # True: `fps_metric` counts frames and is rated
    fps_namespace_label: str = "namespace"
    fps_pod_label: str = "pod"
    workload_label: str = "app.kubernetes.io/name"
    node_class_label: str | None = None
    zone: str = "package"
    scrape_interval_s: float = 15.0
    schema: KeplerSchema | None = None    # None: detect
    include_gpu: bool = True              # add Kepler's GPU power when it exports it
    label_mapping: LabelMapping = DEFAULT_MAPPING


@dataclass
class FetchInfo:
    schema: KeplerSchema | None = None
    gpu: bool = False
    node_gpu: bool = False                # the node's GPU power is exported too
    kube_metrics: tuple[str, ...] = ()
    exclusions: PairCounts = field(default_factory=dict)
    pair_info: dict[tuple[str, str], dict] = field(default_factory=dict)
    nodes_by_class: dict[str, list[str]] = field(default_factory=dict)
    workload_source: str = ""
    counter_resets: int = 0               # reset events (one per exporter restart), all pairs
    kepler_node_aliases: dict[str, str] = field(default_factory=dict)


def partial_windows(window_samples: pd.Series) -> np.ndarray:
    """Rate windows their counter's series covers only in part: holding fewer samples than a window
    usually does (the median over all, so neither the scrape interval nor its setting matters; half
    a sample of slack for a sample on the window's edge). rate() reads low in those: the first
    minute of every pod's life, the last one, and the minute after an exporter restart, by up to
    half; with replicas scaled up and down all day that is several percent of a pair's samples, all
    biased the same way."""
    counts = window_samples.to_numpy(dtype=float)
    known = counts[np.isfinite(counts)]
    if known.size == 0:
        return np.zeros(len(counts), dtype=bool)
    with np.errstate(invalid="ignore"):
        return counts < float(np.median(known)) - 0.5


class PrometheusPowerFpsSource:
    """Implements `PowerFpsSource`. `samples()` issues, per chunk of at most 10,000 steps, one range
    query per series kind (power, node power, FPS, dropped FPS, counter resets, the samples in each
    rate window; GPU power of pods and nodes when Kepler exports it), one instant query each for
    kube_pod_labels and kube_node_labels, and, only where Kepler's node labels cannot place every
    sample, a range query of kube_pod_info's node; `last` describes the last fetch.

    Every sample is placed on the node it was measured on at that time (`placement`), so a pod
    that moves between nodes splits into the right (workload, node class) pairs. Samples whose
    rate window its energy counter covers only in part (`partial_window`: a pod starting or ending,
    an exporter back from a restart) or that holds a counter reset (`counter_reset`) are left out
    and counted: rate() reads low in both."""

    def __init__(self, client: PrometheusClient, settings: SourceSettings = SourceSettings(),
                 progress: Callable[[int, int], None] | None = None,
                 node_class_of: Mapping[str, str] | None = None):
        """`node_class_of`: node -> class as the live loop names them (its node watch), for nodes
        kube_node_labels does not class (kube-state-metrics v2 exports no node labels unless
        allowlisted); else such a node is a class of its own name."""
        self.client = client
        self.node_class_of = dict(node_class_of or {})
        self.settings = settings
        self.progress = progress
        self.last = FetchInfo()

    # -- discovery ---------------------------------------------------------------------------

    def discover(self, start_s: float, end_s: float) -> FetchInfo:
        names = self.client.metric_names('{__name__=~"kepler_.+|kube_pod_info|kube_pod_labels|kube_node_labels"}',
                                         start_s, end_s)
        schema = self.settings.schema or detect_schema(names)
        gpu = self.settings.include_gpu and has_gpu_metrics(schema, names)
        node_gpu = gpu and has_node_gpu_metrics(schema, names)
        kube = tuple(m for m in KUBE_METRICS if m in names)
        log.info("Kepler schema %s%s; kube-state-metrics: %s", schema.value,
                 (" with GPU power" + ("" if node_gpu else f" (no {METRICS[schema].node_gpu})")) if gpu else "",
                 ", ".join(kube) or "absent")
        return FetchInfo(schema=schema, gpu=gpu, node_gpu=node_gpu, kube_metrics=kube)

    # -- history -----------------------------------------------------------------------------

    def samples(self, start_s: float, end_s: float, step_s: float) -> pd.DataFrame:
        s = self.settings
        info = self.discover(start_s, end_s)
        m = METRICS[info.schema]
        window_s = promql.rate_window_s(s.scrape_interval_s, step_s)
        chunks = plan_chunks(start_s, end_s, step_s, self.client.max_points)
        only = (s.fps_metric, s.fps_namespace_label, s.fps_pod_label)
        range_queries = {"power": promql.pod_power_w(info.schema, window_s, s.zone, only_pods_of=only),
                         "node_power": promql.node_power_w(info.schema, window_s, s.zone),
                         "fps": promql.pod_fps(s.fps_metric, window_s, s.fps_is_counter, s.fps_namespace_label, s.fps_pod_label),
                         "resets": promql.pod_reset_steps(info.schema, promql.reset_window_s(s.scrape_interval_s, step_s),
                                                          s.zone, only_pods_of=only),
                         "coverage": promql.pod_window_samples(info.schema, window_s, s.zone, only_pods_of=only)}
        if info.gpu:
            range_queries["gpu_power"] = promql.pod_power_w(info.schema, window_s, s.zone, gpu=True, only_pods_of=only)
        if info.node_gpu:
            range_queries["node_gpu_power"] = promql.node_gpu_power_w(info.schema, window_s)
        if s.drop_metric:
            range_queries["drop"] = promql.pod_fps(s.drop_metric, window_s, s.fps_is_counter, s.fps_namespace_label, s.fps_pod_label)
        if s.requested_metric:
            range_queries["requested"] = promql.pod_fps(s.requested_metric, window_s, s.fps_is_counter,
                                                        s.fps_namespace_label, s.fps_pod_label)
        pod_nodes_query = promql.pod_nodes(only_pods_of=only) if "kube_pod_info" in info.kube_metrics else None
        n_identity = sum(k in info.kube_metrics for k in KUBE_METRICS)
        total = len(chunks) * (len(range_queries) + n_identity)
        done = [0]

        def tick():
            done[0] += 1
            if self.progress:
                self.progress(done[0], total)

        raw: dict[str, list] = {name: [] for name in [*range_queries, "pod_nodes"]}
        label_chunks: list[tuple[float, dict]] = []   # (chunk end, {(ns, pod): workload label})
        node_labels: dict[str, dict] = {}
        label_col = promql.ksm_label_name(s.workload_label)
        for a, b in chunks:
            chunk_power = []
            for name, query in range_queries.items():
                got = self.client.range(query, a, b, step_s)
                raw[name] += got
                if name in ("power", "gpu_power"):
                    chunk_power += got
                tick()
            span_s = b - a + window_s
            if "kube_pod_labels" in info.kube_metrics:
                labels = {}
                for r in self.client.instant(promql.pod_labels(s.workload_label, span_s), b):
                    labels[(r.labels.get("namespace", ""), r.labels.get("pod", ""))] = r.labels.get(label_col, "")
                label_chunks.append((b, labels))
                tick()
            if "kube_node_labels" in info.kube_metrics:
                for r in self.client.instant(promql.node_labels(span_s), b):
                    if r.labels.get("node"):
                        node_labels.setdefault(r.labels["node"], {}).update(r.labels)
                tick()
            if pod_nodes_query is not None:
                if kepler_cannot_place(chunk_power, (m.pod_namespace_label, m.pod_name_label, m.kepler_node_label),
                                       set(node_labels)):
                    raw["pod_nodes"] += self.client.range(pod_nodes_query, a, b, step_s)
                tick()

        pod_cols = {m.pod_namespace_label: "namespace", m.pod_name_label: "pod_name", m.kepler_node_label: "kepler_node"}
        keys = ["namespace", "pod_name", "kepler_node", "t_s"]
        power = series_frame(raw["power"], pod_cols, "power_w").groupby(keys, as_index=False)["power_w"].sum()
        coverage = series_frame(raw["coverage"], pod_cols, "window_samples")
        power = power.merge(coverage, on=keys, how="left")
        power["partial_window"] = partial_windows(power["window_samples"])
        power = power.drop(columns="window_samples")
        if info.gpu:
            gpu = series_frame(raw["gpu_power"], pod_cols, "gpu_w").groupby(keys, as_index=False)["gpu_w"].sum()
            power = power.merge(gpu, on=keys, how="left")
            power["gpu_w"] = power["gpu_w"].fillna(0.0)
            power["power_w"] += power["gpu_w"]
        fps_cols = {s.fps_namespace_label: "namespace", s.fps_pod_label: "pod_name"}
        fps = series_frame(raw["fps"], fps_cols, "fps")
        if s.drop_metric:
            fps = fps.merge(series_frame(raw["drop"], fps_cols, "drop_fps"), on=["namespace", "pod_name", "t_s"], how="left")
        else:
            fps["drop_fps"] = 0.0
        if s.requested_metric:
            fps = fps.merge(series_frame(raw["requested"], fps_cols, "requested_fps"),
                            on=["namespace", "pod_name", "t_s"], how="left")
        node_power = series_frame(raw["node_power"], {m.kepler_node_label: "kepler_node"}, "node_power_w")
        if info.node_gpu:
            node_gpu = series_frame(raw["node_gpu_power"], {m.kepler_node_label: "kepler_node"}, "node_gpu_w")
            node_power = node_power.merge(node_gpu, on=["kepler_node", "t_s"], how="left")
            node_power["node_power_w"] += node_power["node_gpu_w"].fillna(0.0)
            node_power = node_power.drop(columns="node_gpu_w")
        pod_nodes = series_frame(raw["pod_nodes"], {"namespace": "namespace", "pod": "pod_name", "node": "node"}, "_")
        resets = series_frame(raw["resets"], pod_cols, "_")

        if fps.empty:
            raise NoFpsData(f"no samples of the FPS metric {s.fps_metric!r} with labels {s.fps_namespace_label!r} and "
                            f"{s.fps_pod_label!r} between {start_s:.0f} and {end_s:.0f}; set --fps-metric (and "
                            "--fps-counter for a frames counter) to what the inference pods export")
        if power.empty:
            raise NoKeplerData(f"Kepler's {m.pod_cpu_joules} has no samples between {start_s:.0f} and {end_s:.0f}; "
                               "widen the range or check that Kepler was running then")
        df, info = self._assemble(power, fps, node_power, pod_nodes, label_chunks, node_labels, resets, info, step_s)
        self.last = info
        return df

    def _assemble(self, power, fps, node_power, pod_nodes, label_chunks, node_labels, resets, info: FetchInfo,
                  step_s: float) -> tuple[pd.DataFrame, FetchInfo]:
        s = self.settings
        inference_pods = set(zip(fps["namespace"], fps["pod_name"]))
        power = power[[k in inference_pods for k in zip(power["namespace"], power["pod_name"])]]
        known_nodes = set(node_labels) | set(pod_nodes["node"])
        placed, aliases = place_power_samples(power, pod_nodes, known_nodes)
        if aliases:
            log.info("Kepler node labels that are not node names, placed by kube_pod_info: %s",
                     ", ".join(f"{k} -> {v}" for k, v in sorted(aliases.items())))
        df = placed.merge(fps, on=KEYS, how="outer")
        df["ambiguous"] = df["ambiguous"].astype("boolean").fillna(False).astype(bool)
        df = self._fill_nodes(df, pod_nodes)
        df["workload"] = self._workloads(df, label_chunks, info)
        classes = node_classes_from_labels(
            {n: lab for n, lab in node_labels.items() if any(k.startswith("label_") for k in lab)},
            s.node_class_label, s.label_mapping)
        live = self.node_class_of
        df["node_class"] = [classes.get(n) or live.get(n) or n or "?" for n in df["node"]]
        df["pod"] = df["namespace"] + "/" + df["pod_name"]
        df = df.merge(node_power, on=["kepler_node", "t_s"], how="left")
        if info.gpu and not info.node_gpu:  # the node draws at least its pods' GPU power
            df["node_power_w"] += df["gpu_w"].fillna(0.0)

        counts: PairCounts = {}
        ambiguous = df["ambiguous"].to_numpy()
        missing_power = df["power_w"].isna().to_numpy() & ~ambiguous
        missing_fps = df["fps"].isna().to_numpy() & ~missing_power & ~ambiguous
        add_counts(counts, df, ambiguous, "node_ambiguous")
        add_counts(counts, df, missing_power, "missing_power")
        add_counts(counts, df, missing_fps, "missing_fps")
        partial = df["partial_window"].astype("boolean").fillna(False).to_numpy(dtype=bool) & \
            ~(ambiguous | missing_power | missing_fps)
        add_counts(counts, df, partial, "partial_window")
        reset = self._in_reset_windows(df, resets) & ~(ambiguous | missing_power | missing_fps | partial)
        add_counts(counts, df, reset, "counter_reset")
        placed_at = df[["namespace", "pod_name", "t_s", "workload", "node_class"]]
        df = df[~(ambiguous | missing_power | missing_fps | partial | reset)].copy()
        df["drop_fps"] = df["drop_fps"].fillna(0.0)
        self._count_gaps(df, step_s, counts)

        pair_info, info.counter_resets = count_reset_events(resets, placed_at, step_s)
        if info.counter_resets:
            log.info("%d Kepler counter reset event(s) (exporter restarts); the samples whose rate window holds one "
                     "are left out (rate() bridges a reset but not the energy of the restart's gap)", info.counter_resets)
        nodes_by_class: dict[str, set[str]] = {}
        for n, c in classes.items():
            nodes_by_class.setdefault(c, set()).add(n)
        info.exclusions, info.pair_info, info.kepler_node_aliases = counts, pair_info, aliases
        info.nodes_by_class = {c: sorted(v) for c, v in nodes_by_class.items()}
        out = df[list(SAMPLE_COLUMNS) + ["node_power_w"] + (["requested_fps"] if s.requested_metric else [])].sort_values(["pod", "t_s"]).reset_index(drop=True)
        return out, info

    @staticmethod
    def _in_reset_windows(df: pd.DataFrame, resets: pd.DataFrame) -> np.ndarray:
        """Samples whose rate window holds a reset of one of their pod's energy counters (an exporter
        restart: `resets` has those steps, its window at least the rate window). rate() bridges a
        reset as if the counter had restarted from zero just after the last sample before it, so
        whatever the restart missed (its downtime's energy) is lost and the window's power reads low:
        left out, as `counter_reset`, rather than fitted."""
        if resets.empty or df.empty:
            return np.zeros(len(df), dtype=bool)
        steps = resets[KEYS].drop_duplicates().assign(_reset=True)
        hit = df[KEYS].merge(steps, on=KEYS, how="left")["_reset"]
        return hit.astype("boolean").fillna(False).to_numpy(dtype=bool)

    @staticmethod
    def _fill_nodes(df: pd.DataFrame, pod_nodes: pd.DataFrame) -> pd.DataFrame:
        """A node for samples without power (FPS only), so they are counted against the right pair:
        kube_pod_info's node at that time, else the pod's nearest placed sample."""
        missing = df["node"].isna()
        if not missing.any():
            return df
        df = df.copy()
        info = unique_info_nodes(pod_nodes)
        if not info.empty:
            df.loc[missing, "node"] = df.loc[missing, KEYS].merge(info, on=KEYS, how="left")["info_node"].to_numpy()
        df = df.sort_values(["namespace", "pod_name", "t_s"]).reset_index(drop=True)
        by_pod = ["namespace", "pod_name"]
        df["node"] = df.groupby(by_pod, sort=False)["node"].ffill()
        df["node"] = df.groupby(by_pod, sort=False)["node"].bfill().fillna("")
        return df

    def _workloads(self, df: pd.DataFrame, label_chunks: list[tuple[float, dict]], info: FetchInfo) -> list[str]:
        """Workload per sample: the pod's `workload_label` in kube_pod_labels for the chunk the
        sample is in, else the pod name without its controller suffix. Says which it was."""
        s = self.settings
        label_col = promql.ksm_label_name(s.workload_label)
        ends = np.array([b for b, _ in label_chunks])
        chunk_of = np.minimum(np.searchsorted(ends, df["t_s"].to_numpy(dtype=float), side="left"),
                              max(len(ends) - 1, 0))
        out, by_label, by_name = [], set(), set()
        for ns, p, i in zip(df["namespace"], df["pod_name"], chunk_of):
            value = label_chunks[i][1].get((ns, p)) if label_chunks else None
            if value:
                out.append(f"{ns}/{value}")
                by_label.add((ns, p))
            else:
                out.append(workload_from_pod_name(ns, p))
                by_name.add((ns, p))
        by_name -= by_label
        if "kube_pod_labels" not in info.kube_metrics:
            info.workload_source = "pod name (kube_pod_labels absent)"
        elif not by_label:
            info.workload_source = (f"pod name (kube_pod_labels has no {label_col} for these pods: set "
                                    f"--workload-label, or let kube-state-metrics export it with "
                                    f"--metric-labels-allowlist=pods=[{s.workload_label}])")
        elif by_name:
            info.workload_source = (f"kube_pod_labels {s.workload_label}; pod name for {len(by_name)} pod(s) "
                                    f"without that label")
        else:
            info.workload_source = f"kube_pod_labels {s.workload_label}"
        if by_name and "kube_pod_labels" in info.kube_metrics:
            log.info("workload from: %s", info.workload_source)
        return out

    @staticmethod
    def _count_gaps(df: pd.DataFrame, step_s: float, counts: PairCounts) -> None:
        """Steps inside a pod's life with neither power nor FPS: nothing to exclude, but counted."""
        if df.empty:
            return
        g = df.groupby(["workload", "node_class", "pod"], observed=True)["t_s"].agg(["min", "max", "count"])
        expected = np.floor((g["max"] - g["min"]) / step_s + 1e-6) + 1
        missing = (expected - g["count"]).clip(lower=0)
        for (w, c, _), n in missing.items():
            if n > 0:
                bucket = counts.setdefault((w, c), {})
                bucket["gap"] = bucket.get("gap", 0) + int(n)
