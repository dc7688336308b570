"""`PrometheusPowerFpsSource`: the live `PowerFpsSource` (models/ports.py) over Kepler, the
application's FPS metric and kube-state-metrics."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from wattwise.models.labels import DEFAULT_MAPPING, LabelMapping
from wattwise.models.ports import SAMPLE_COLUMNS
from wattwise.telemetry.hygiene import PairCounts, add_counts
from wattwise.telemetry.prometheus import promql
from wattwise.telemetry.prometheus.client import PrometheusClient, plan_chunks
from wattwise.telemetry.prometheus.errors import NoFpsData, NoKeplerData
from wattwise.telemetry.prometheus.frames import (node_classes_from_labels, series_frame,
                                                  workload_from_pod_name)
from wattwise.telemetry.prometheus.schema import METRICS, KeplerSchema, detect_schema, has_gpu_metrics

log = logging.getLogger(__name__)

KUBE_METRICS = ("kube_pod_info", "kube_pod_labels", "kube_node_labels")


@dataclass(frozen=True)
class SourceSettings:
    """What to read. Defaults follow the reference pipeline and kube-state-metrics conventions."""

    fps_metric: str = "infer_fps"
    drop_metric: str | None = "drop_fps"
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
    kube_metrics: tuple[str, ...] = ()
    exclusions: PairCounts = field(default_factory=dict)
    pair_info: dict[tuple[str, str], dict] = field(default_factory=dict)
    nodes_by_class: dict[str, list[str]] = field(default_factory=dict)
    workload_source: str = ""


class PrometheusPowerFpsSource:
    """Implements `PowerFpsSource`. `samples()` issues, per chunk of at most 10,000 steps, one range
    query per series kind and three instant identity queries; `last` describes the last fetch."""

    def __init__(self, client: PrometheusClient, settings: SourceSettings = SourceSettings(),
                 progress: Callable[[int, int], None] | None = None):
        self.client = client
        self.settings = settings
        self.progress = progress
        self.last = FetchInfo()

    # -- discovery ---------------------------------------------------------------------------

    def discover(self, start_s: float, end_s: float) -> FetchInfo:
        names = self.client.metric_names('{__name__=~"kepler_.+|kube_pod_info|kube_pod_labels|kube_node_labels"}',
                                         start_s, end_s)
        schema = self.settings.schema or detect_schema(names)
        gpu = self.settings.include_gpu and has_gpu_metrics(schema, names)
        kube = tuple(m for m in KUBE_METRICS if m in names)
        log.info("Kepler schema %s%s; kube-state-metrics: %s", schema.value, " with GPU power" if gpu else "",
                 ", ".join(kube) or "absent")
        return FetchInfo(schema=schema, gpu=gpu, kube_metrics=kube)

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
                         "fps": promql.pod_fps(s.fps_metric, window_s, s.fps_is_counter, s.fps_namespace_label, s.fps_pod_label)}
        if info.gpu:
            range_queries["gpu_power"] = promql.pod_power_w(info.schema, window_s, s.zone, gpu=True, only_pods_of=only)
        if s.drop_metric:
            range_queries["drop"] = promql.pod_fps(s.drop_metric, window_s, s.fps_is_counter, s.fps_namespace_label, s.fps_pod_label)
        n_identity = 1 + len(info.kube_metrics)
        total = len(chunks) * (len(range_queries) + n_identity)
        done = [0]

        def tick():
            done[0] += 1
            if self.progress:
                self.progress(done[0], total)

        raw = {name: [] for name in range_queries}
        pod_node, pod_label, node_labels, resets = {}, {}, {}, {}
        label_col = promql.ksm_label_name(s.workload_label)
        for a, b in chunks:
            for name, query in range_queries.items():
                raw[name] += self.client.range(query, a, b, step_s)
                tick()
            span_s = b - a + window_s
            # resets over (a - step, b]: consecutive chunks do not count a reset twice
            for r in self.client.instant(promql.pod_counter_resets(info.schema, b - a + step_s, s.zone), b):
                key = (r.labels.get(m.pod_namespace_label, ""), r.labels.get(m.pod_name_label, ""))
                resets[key] = resets.get(key, 0) + int(r.values[0])
            tick()
            if "kube_pod_info" in info.kube_metrics:
                for r in self.client.instant(promql.pod_info(span_s), b):
                    pod_node[(r.labels.get("namespace", ""), r.labels.get("pod", ""))] = r.labels.get("node", "")
                tick()
            if "kube_pod_labels" in info.kube_metrics:
                for r in self.client.instant(promql.pod_labels(s.workload_label, span_s), b):
                    pod_label[(r.labels.get("namespace", ""), r.labels.get("pod", ""))] = r.labels.get(label_col, "")
                tick()
            if "kube_node_labels" in info.kube_metrics:
                for r in self.client.instant(promql.node_labels(span_s), b):
                    if r.labels.get("node"):
                        node_labels.setdefault(r.labels["node"], {}).update(r.labels)
                tick()

        pod_cols = {m.pod_namespace_label: "namespace", m.pod_name_label: "pod_name", m.kepler_node_label: "kepler_node"}
        power = series_frame(raw["power"], pod_cols, "power_w")
        if info.gpu:
            gpu = series_frame(raw["gpu_power"], pod_cols, "power_w")
            power = pd.concat([power, gpu]).groupby(["namespace", "pod_name", "kepler_node", "t_s"], as_index=False)["power_w"].sum()
        power = power.groupby(["namespace", "pod_name", "t_s"], as_index=False).agg(
            power_w=("power_w", "sum"), kepler_node=("kepler_node", "first"))
        fps_cols = {s.fps_namespace_label: "namespace", s.fps_pod_label: "pod_name"}
        fps = series_frame(raw["fps"], fps_cols, "fps")
        if s.drop_metric:
            fps = fps.merge(series_frame(raw["drop"], fps_cols, "drop_fps"), on=["namespace", "pod_name", "t_s"], how="left")
        else:
            fps["drop_fps"] = 0.0
        node_power = series_frame(raw["node_power"], {m.kepler_node_label: "kepler_node"}, "node_power_w")

        if fps.empty:
            raise NoFpsData(f"no samples of the FPS metric {s.fps_metric!r} with labels {s.fps_namespace_label!r} and "
                            f"{s.fps_pod_label!r} between {start_s:.0f} and {end_s:.0f}; set --fps-metric (and "
                            "--fps-counter for a frames counter) to what the inference pods export")
        if power.empty:
            raise NoKeplerData(f"Kepler's {m.pod_cpu_joules} has no samples between {start_s:.0f} and {end_s:.0f}; "
                               "widen the range or check that Kepler was running then")
        df, info = self._assemble(power, fps, node_power, pod_node, pod_label, node_labels, resets, info, step_s)
        self.last = info
        return df

    def _assemble(self, power, fps, node_power, pod_node, pod_label, node_labels, resets, info: FetchInfo,
                  step_s: float) -> tuple[pd.DataFrame, FetchInfo]:
        s = self.settings
        inference_pods = set(zip(fps["namespace"], fps["pod_name"]))
        power = power[[k in inference_pods for k in zip(power["namespace"], power["pod_name"])]]
        df = power.merge(fps, on=["namespace", "pod_name", "t_s"], how="outer")
        keys = list(zip(df["namespace"], df["pod_name"]))
        kepler_node_of = power.groupby(["namespace", "pod_name"])["kepler_node"].first().to_dict()
        df["node"] = [pod_node.get(k) or kepler_node_of.get(k, "") for k in keys]
        if pod_label:
            info.workload_source = f"kube_pod_labels {s.workload_label}"
        else:
            info.workload_source = "pod name (kube_pod_labels absent)"
        df["workload"] = [f"{ns}/{pod_label[(ns, p)]}" if pod_label.get((ns, p)) else workload_from_pod_name(ns, p)
                          for ns, p in keys]
        classes = node_classes_from_labels(
            {n: lab for n, lab in node_labels.items() if any(k.startswith("label_") for k in lab)},
            s.node_class_label, s.label_mapping)
        df["node_class"] = [classes.get(n) or n or "?" for n in df["node"]]
        df["pod"] = [f"{ns}/{p}" for ns, p in keys]
        df = df.merge(node_power, on=["kepler_node", "t_s"], how="left")

        counts: PairCounts = {}
        missing_power = df["power_w"].isna().to_numpy()
        missing_fps = df["fps"].isna().to_numpy() & ~missing_power
        add_counts(counts, df, missing_power, "missing_power")
        add_counts(counts, df, missing_fps, "missing_fps")
        df = df[~(missing_power | missing_fps)]
        df["drop_fps"] = df["drop_fps"].fillna(0.0)
        self._count_gaps(df, step_s, counts)

        pair_info: dict[tuple[str, str], dict] = {}
        pair_of_pod = df.groupby(["namespace", "pod_name"])[["workload", "node_class"]].first()
        for (ns, p), n in resets.items():
            if (ns, p) in pair_of_pod.index and n:
                w, c = pair_of_pod.loc[(ns, p)]
                pair_info.setdefault((w, c), {"counter_resets": 0})["counter_resets"] += int(n)
        nodes_by_class: dict[str, set[str]] = {}
        for n, c in classes.items():
            nodes_by_class.setdefault(c, set()).add(n)
        info.exclusions, info.pair_info = counts, pair_info
        info.nodes_by_class = {c: sorted(v) for c, v in nodes_by_class.items()}
        out = df[list(SAMPLE_COLUMNS) + ["node_power_w"]].sort_values(["pod", "t_s"]).reset_index(drop=True)
        return out, info

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
