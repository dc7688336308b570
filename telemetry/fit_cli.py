"""`wattwise fit`: fit energy models from Kepler and FPS history in Prometheus.

Writes into --out: `energy-models.json` (models/persistence format: the pairs' models, and in
`node_power` the power curve of every node class fitted from Kepler's node power against CPU
utilisation, `telemetry/node_curves.py`), `fit-report.json` and `fit-table.txt` (the tables also
printed on stdout: the pairs, then the node classes).

`fit_from_prometheus` is the fit itself (fetch, clean, fit, report), shared with the live
refitter (`telemetry/refit.py`), so the service learns exactly as `wattwise fit` does.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import dataclass
from typing import Callable, Mapping

from wattwise import out_dir
from wattwise.models import persistence
from wattwise.models.cluster import NodeClass
from wattwise.models.errors import InvalidInputError, require_positive
from wattwise.models.priors import prior_model
from wattwise.models.workload import Workload
from wattwise.telemetry.fitting import FitResult, FitSettings, fit_energy_models
from wattwise.telemetry.node_curves import NodeCurveFit, NodeCurveSettings, fit_node_curves, format_node_table
from wattwise.telemetry.progress import ProgressBar
from wattwise.telemetry.prometheus import connection
from wattwise.telemetry.prometheus.client import PrometheusClient
from wattwise.telemetry.prometheus.connection import NO_AUTH, PrometheusAuth
from wattwise.telemetry.prometheus.node_power import PrometheusNodePowerSource
from wattwise.telemetry.prometheus.schema import KeplerSchema
from wattwise.telemetry.prometheus.source import PrometheusPowerFpsSource, SourceSettings
from wattwise.telemetry.report_table import format_table
from wattwise.telemetry.timeparse import parse_duration_s, parse_instant_s

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    prometheus = parser.add_argument_group("Prometheus", "where the history comes from, and how to reach it")
    prometheus.add_argument("--prometheus", required=True, metavar="URL", help="Prometheus base URL")
    connection.add_arguments(prometheus)
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--since", default=None, help="range ending now, e.g. 7d (default 7d)")
    when.add_argument("--start", default=None, help="range start: Unix seconds or ISO 8601 (with --end)")
    parser.add_argument("--end", default=None, help="range end: Unix seconds or ISO 8601 (with --start)")
    parser.add_argument("--step", default="15s", help="resolution of the samples (default 15s)")
    parser.add_argument("--out", required=True, metavar="DIR", help="directory for models and report")
    parser.add_argument("--fps-metric", default="infer_fps", help="delivered-FPS gauge per pod (default infer_fps)")
    parser.add_argument("--drop-metric", default="drop_fps", help="dropped-FPS gauge per pod; '' to disable")
    parser.add_argument("--requested-metric", default="", help="per-pod gauge of the FPS asked of each replica: "
                                                                "delivering below it is saturation (default '': none)")
    parser.add_argument("--fps-counter", action="store_true", help="--fps-metric/--drop-metric count frames: rate them")
    parser.add_argument("--workload-label", default="app.kubernetes.io/name", help="pod label naming the workload")
    parser.add_argument("--node-class-label", default=None, help="node label naming the node class")
    parser.add_argument("--zone", default="package", help="Kepler zone for CPU power (default package)")
    parser.add_argument("--scrape-interval", default="15s", help="Kepler scrape interval (sets the rate window)")
    parser.add_argument("--schema", choices=("auto", "0.10", "0.9"), default="auto", help="Kepler schema")
    parser.add_argument("--timeout", default="30s", help="timeout of each Prometheus query")
    parser.add_argument("--retries", type=int, default=2, help="retries on connection errors and 429/5xx")
    parser.add_argument("--min-samples", type=int, default=30, help="training samples a pair needs to be fitted")
    parser.add_argument("--node-min-samples", type=int, default=NodeCurveSettings.min_samples,
                        help="samples a node class needs for its power curve (default %(default)s)")
    parser.add_argument("--node-min-util-span", type=float, default=NodeCurveSettings.min_util_span,
                        help="CPU utilisation range (0..1) a node class's samples must span (default %(default)s)")


def _range(args, now_s: float) -> tuple[float, float]:
    if args.start or args.end:
        if not (args.start and args.end):
            raise InvalidInputError("--start/--end", "give both --start and --end, or --since")
        start_s, end_s = parse_instant_s(args.start, "--start"), parse_instant_s(args.end, "--end")
    else:
        end_s = now_s
        start_s = end_s - parse_duration_s(args.since or "7d", "--since")
    if end_s <= start_s:
        raise InvalidInputError("--start/--end", "the range is empty: end must be after start")
    return start_s, end_s


def prior_for_pair(workload_key: str, node_class: str):
    """The hardware prior of a pair known only by its names (the workload key and the class)."""
    namespace, _, name = workload_key.partition("/")
    return prior_model(Workload(name=name or namespace, namespace=namespace if name else "default"),
                       NodeClass(name=node_class))


@dataclass(frozen=True)
class FitJob:
    """What to fetch from which Prometheus, and how to fit it: one `wattwise fit` run, less its range."""

    prometheus_url: str
    source: SourceSettings = SourceSettings()
    fit: FitSettings = FitSettings()
    step_s: float = 15.0
    timeout_s: float = 30.0
    retries: int = 2
    node_curves: NodeCurveSettings = NodeCurveSettings()
    prometheus_auth: PrometheusAuth = NO_AUTH     # credentials, TLS and headers (the --prometheus-* flags)


@dataclass
class FitRun:
    result: FitResult
    report: dict  # what `wattwise fit` writes as fit-report.json
    node_power: NodeCurveFit | None = None   # the node classes' power curves; None: not fetched


def fit_from_prometheus(job: FitJob, start_s: float, end_s: float,
                        progress: Callable[[int, int], None] | None = None,
                        node_class_of: Mapping[str, str] | None = None) -> FitRun:
    """Fetch [start_s, end_s], fit every pair and every node class's power curve. Raises the
    adapter's `TelemetryError`s. `node_class_of`: the live loop's node classes, for nodes
    kube_node_labels does not class."""
    with PrometheusClient(job.prometheus_url, timeout_s=job.timeout_s, retries=job.retries,
                          auth=job.prometheus_auth) as client:
        source = PrometheusPowerFpsSource(client, job.source, progress=progress, node_class_of=node_class_of)
        samples = source.samples(start_s, end_s, job.step_s)
        info = source.last
        nodes = PrometheusNodePowerSource(client, job.source.zone, job.source.scrape_interval_s)
        node_samples = nodes.samples(start_s, end_s, job.step_s, info.schema, info.kepler_node_aliases)
        stats = client.stats
    class_of = {**(node_class_of or {}), **{n: c for c, members in info.nodes_by_class.items() for n in members}}
    node_fit = fit_node_curves(node_samples, class_of, job.node_curves, expected_classes=info.nodes_by_class)
    if nodes.last.problem:
        log.info("node power curves: none fitted, %s", nodes.last.problem)
    result = fit_energy_models(samples, prior_for=prior_for_pair, nodes_by_class=info.nodes_by_class,
                               exclusions=info.exclusions, settings=job.fit, source=f"kepler-{info.schema.value}")
    for entry in result.pairs:
        entry.update(info.pair_info.get((entry["workload"], entry["node_class"]), {"counter_resets": 0}))
    report = result.report()
    report.update({"prometheus": job.prometheus_url, "kepler_schema": info.schema.value, "gpu_power": info.gpu,
                   "range": {"start_s": start_s, "end_s": end_s, "step_s": job.step_s},
                   "workload_from": info.workload_source, "kube_state_metrics": list(info.kube_metrics),
                   "counter_resets": info.counter_resets, "kepler_node_aliases": info.kepler_node_aliases,
                   "prometheus_requests": stats.requests, "prometheus_bytes": stats.bytes_received,
                   "node_power": {**node_fit.report(), **nodes.last.as_dict(),
                                  "thresholds": {"min_samples": job.node_curves.min_samples,
                                                 "min_util_span": job.node_curves.min_util_span,
                                                 "max_power_w": job.node_curves.max_power_w}}})
    return FitRun(result, report, node_fit)


def _job(args) -> tuple[FitJob, float, float]:
    """The fit the flags ask for and its range; one line naming a flag that cannot work, before any
    query is sent."""
    auth = connection.from_args(args)
    start_s, end_s = _range(args, time.time())
    step_s = parse_duration_s(args.step, "--step")
    if step_s <= 0:
        raise InvalidInputError("--step", "must be positive")
    timeout_s = require_positive(parse_duration_s(args.timeout, "--timeout"), "--timeout",
                                 "give how long one Prometheus query may take, e.g. 30s")
    _require_count(args.retries, "--retries", 0, "give how often to retry a failed query, e.g. 2 (0: never)")
    _require_count(args.min_samples, "--min-samples", 1, "give the training samples a pair needs, e.g. 30")
    settings = SourceSettings(fps_metric=args.fps_metric, drop_metric=args.drop_metric or None,
                              requested_metric=args.requested_metric or None,
                              fps_is_counter=args.fps_counter, workload_label=args.workload_label,
                              node_class_label=args.node_class_label, zone=args.zone,
                              scrape_interval_s=parse_duration_s(args.scrape_interval, "--scrape-interval"),
                              schema=None if args.schema == "auto" else KeplerSchema(args.schema))
    if args.node_min_samples < 1:
        raise InvalidInputError("--node-min-samples", "must be at least 1")
    if not 0 < args.node_min_util_span <= 1:
        raise InvalidInputError("--node-min-util-span", "must be a fraction of the utilisation range, in (0, 1]")
    job = FitJob(args.prometheus, settings, FitSettings(min_train_samples=args.min_samples), step_s,
                 timeout_s, args.retries,
                 NodeCurveSettings(min_samples=args.node_min_samples, min_util_span=args.node_min_util_span),
                 prometheus_auth=auth)
    return job, start_s, end_s


def _require_count(value: int, flag: str, least: int, hint: str) -> None:
    if value < least:
        raise InvalidInputError(flag, f"{value} is less than {least}", hint)


def run(args) -> int:
    # urllib3 logs every retry as a warning; our error says it all in one line.
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    out = out_dir.check_out_dir(args.out, "energy-models.json, fit-report.json and fit-table.txt")
    job, start_s, end_s = _job(args)
    bar = ProgressBar("fetching")
    try:
        fitted = fit_from_prometheus(job, start_s, end_s, progress=bar)
    finally:
        bar.close()
    result, report = fitted.result, fitted.report
    curves = fitted.node_power.curves if fitted.node_power is not None else {}
    try:
        out.mkdir(parents=True, exist_ok=True)
        persistence.save(out / "energy-models.json", result.models, curves)
        (out / "fit-report.json").write_text(json.dumps(report, indent=2) + "\n")
        table = format_table(result.pairs)
        if fitted.node_power is not None:
            problem = report["node_power"].get("problem")
            table += "\n\n" + format_node_table(fitted.node_power.classes) + (f"\n({problem})" if problem else "")
        (out / "fit-table.txt").write_text(table + "\n")
    except OSError as e:
        raise InvalidInputError("--out", f"cannot write to {out} ({e.strerror})") from None
    print(table)
    print(f"\n{len(result.models)} models and {len(curves)} node power curves -> {out / 'energy-models.json'}; "
          f"report -> {out / 'fit-report.json'}")
    return 0
