"""`wattwise serve`: the KEDA external scaler (--scaler), the scheduler extender (--extender), or
both on the bundled scenario with recorded telemetry (--demo).

In a cluster (--in-cluster or --kubeconfig, no --scenario) it plans what the Kubernetes API
serves: the nodes (classes from their labels, free room net of every pod, grid zones), the
ScaledObjects whose trigger names this scaler (--scaler-service) and their pod templates, each
ScaledObject's demand from its PromQL `query` against --prometheus, the energy models in
--models, and carbon from a provider (--carbon-config, --carbon-static; else every zone counts at
the conservative default). With --scenario the nodes and workload catalogue come from that file
instead (a cluster described by hand). The extender alone makes the same plan from the same
inputs through the same code.
It plans in a worker process, so re-planning never slows the answers (--plan-inline: on a thread).
SIGTERM or Ctrl-C stops gracefully: health NOT_SERVING, streams end with OK, in-flight calls
finish within --grace-s, exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import functools
import gc
import importlib
import logging
import math
import os
import re
import signal
import socket
import sys
import time

from wattwise.logs import announce
from wattwise.listen import as_servers_bind, host_port
from wattwise.models import BUNDLED_SCENARIO as DEFAULT_SCENARIO
from wattwise.models.errors import InvalidInputError

log = logging.getLogger(__name__)

DEFAULT_SCALER_SERVICE = "wattwise-scaler"
DEFAULT_REFIT_EVERY = "4h"
EXTENDER_MODULE = "wattwise.scheduler.server"


def _extender_module():
    try:
        return importlib.import_module(EXTENDER_MODULE)
    except ModuleNotFoundError as e:
        if e.name and EXTENDER_MODULE.startswith(e.name):
            return None
        raise


def add_arguments(parser: argparse.ArgumentParser) -> None:
    mode = parser.add_argument_group("what to run")
    mode.add_argument("--scaler", action="store_true", help="run the KEDA external scaler (gRPC)")
    mode.add_argument("--extender", action="store_true", help="run the kube-scheduler extender (HTTP)")
    mode.add_argument("--demo", action="store_true",
                      help="run both on the bundled scenario with recorded telemetry (no cluster needed)")
    where = parser.add_argument_group("where to listen")
    where.add_argument("--host", default="0.0.0.0", help="address to bind (default 0.0.0.0; 127.0.0.1 for local only)")
    where.add_argument("--grpc-port", type=int, default=6000, help="scaler gRPC port (default 6000; 0 picks one)")
    where.add_argument("--health-port", type=int, default=6001,
                       help="plaintext grpc.health.v1 port for Kubernetes probes (default 6001; 0 picks one)")
    where.add_argument("--metrics-port", type=int, default=None,
                       help="serve the scaler's Prometheus metrics on this port (default: off)")
    tls = parser.add_argument_group("scaler TLS")
    tls.add_argument("--tls-cert", help="PEM server certificate for the gRPC port (turns on TLS 1.2+; the files are "
                                        "reloaded when they change, e.g. renewed by cert-manager)")
    tls.add_argument("--tls-key", help="PEM private key of --tls-cert")
    tls.add_argument("--tls-client-ca", help="PEM CA; client certificates signed by it are required (mTLS)")
    tls.add_argument("--metrics-tls", choices=("off", "tls", "mtls"), default="off",
                     help="--metrics-port over HTTPS with --tls-cert/--tls-key (TLS 1.2+, reloaded like the gRPC "
                          "port's): `tls` asks no client certificate, the usual Prometheus set-up (ServiceMonitor "
                          "`scheme: https`, `tlsConfig.ca` the CA that signed --tls-cert); `mtls` also requires a "
                          "client certificate signed by --tls-client-ca (`tlsConfig.cert` and `keySecret`). "
                          "Default off: plain HTTP, as deploy/'s ServiceMonitor scrapes it")
    scaler = parser.add_argument_group("scaler")
    scaler.add_argument("--scenario", default=None,
                        help="scenario file: the cluster, zones and workload catalogue, instead of the Kubernetes "
                             "API (default: the API when configured; --demo: the bundled scenario)")
    scaler.add_argument("--models", metavar="DIR",
                        help="energy models (what `wattwise fit --out` writes, or a mounted ConfigMap), reloaded "
                             "when they change (default: the scenario's, else priors)")
    scaler.add_argument("--refit-every", default=None, metavar="DURATION",
                        help="with --prometheus and --models: refit the energy models this often in the "
                             "background, keeping a new model only when it passes the quality gate, and write "
                             "them to --models when it is writable (default 4h; 0 turns refitting off)")
    scaler.add_argument("--fps-metric", default="infer_fps", metavar="NAME",
                        help="in a cluster with --prometheus: the per-pod delivered-FPS gauge; replicas that drop "
                             "frames (--drop-metric) lower their class's capacity at once (default infer_fps; '' "
                             "turns this off)")
    scaler.add_argument("--drop-metric", default="drop_fps", metavar="NAME",
                        help="the per-pod dropped-FPS gauge (default drop_fps)")
    scaler.add_argument("--requested-metric", default="", metavar="NAME",
                        help="the per-pod gauge of the FPS each replica is asked for, when the pipeline exports "
                             "one: delivering below it counts as saturated, like dropping frames, in the live "
                             "capacity correction and in refits (default '': not used)")
    scaler.add_argument("--refit-window", default="24h", metavar="DURATION",
                        help="the Kepler and FPS history each refit reads (default 24h)")
    scaler.add_argument("--kepler-schema", choices=("auto", "0.10", "0.9"), default="auto",
                        help="Kepler's metric names and labels for refits (default auto: detected from what "
                             "Prometheus holds)")
    scaler.add_argument("--workload-label", default="wattwise.io/workload", metavar="LABEL",
                        help="the pod label naming its workload (the ScaledObject) in refits, as kube-state-metrics "
                             "exports it in kube_pod_labels (v2 only with --metric-labels-allowlist=pods=[LABEL]); "
                             "without it, the pod name (default wattwise.io/workload)")
    scaler.add_argument("--kepler-zone", default="package", metavar="ZONE",
                        help="Kepler's RAPL zone for CPU power in refits (default package)")
    scaler.add_argument("--scrape-interval", default="15s", metavar="DURATION",
                        help="how often Prometheus scrapes Kepler and the FPS gauges: the refit's sample step "
                             "and rate window follow it (default 15s)")
    scaler.add_argument("--objective", choices=("energy", "carbon", "balanced"), default=None,
                        help="what plans minimise where a ScaledObject does not say (default: the scenario's, "
                             "else energy)")
    scaler.add_argument("--scaler-service", default=DEFAULT_SCALER_SERVICE, metavar="NAME",
                        help="the scaler's Service name: ScaledObjects whose trigger's scalerAddress is NAME[.ns...]"
                             ":PORT are planned; with --in-cluster, ns must be this pod's namespace "
                             f"(default {DEFAULT_SCALER_SERVICE})")
    scaler.add_argument("--zone-network", metavar="FILE",
                        help="YAML round trips between grid zones in ms, {ZONE: {ZONE: ms}} (symmetric; a pair not "
                             "listed is unreachable): a ScaledObject with `originZone` may then be served from any "
                             "zone within its `latencyMs` (without this file, only from its originZone)")
    scaler.add_argument("--grid-zone-map", metavar="FILE",
                        help="YAML mapping node zones or regions to grid zones (Electricity Maps keys), before the "
                             "bundled cloud-region map; a node's wattwise.io/grid-zone label wins over both")
    scaler.add_argument("--refresh-s", type=float, default=15.0,
                        help="plan refresh interval in seconds, fractions allowed; also the plan clock's "
                             "resolution (default 15)")
    scaler.add_argument("--scale-down-window", default=None, metavar="DURATION",
                        help="plan each workload for its peak demand over this window, so replicas go down only "
                             "after demand has stayed lower this long, like an HPA's "
                             "behavior.scaleDown.stabilizationWindowSeconds (default 5m; with --scenario, the "
                             "scenario's settings.scale_down_window_s; 0: demand of now)")
    scaler.add_argument("--forecast-backfill", default="24h", metavar="DURATION",
                        help="when a workload is first planned (on start, or first registered by KEDA), seed its "
                             "pre-warming forecast with this much of its demand read back from --prometheus, so a "
                             "restarted scaler pre-warms as one that ran through it (default 24h; 0: off, learn "
                             "from now)")
    scaler.add_argument("--replan-min-interval", default="30s", metavar="DURATION",
                        help="re-plan for changed demand or carbon at most this often (a ScaledObject or node "
                             "that comes, goes or changes re-plans at once; default 30s, at most 30m)")
    scaler.add_argument("--registration-ttl-s", type=float, default=600.0,
                        help="with --scenario: forget a ScaledObject KEDA has not called for this long (default "
                             "600); keep it above twice the longest pollingInterval, or one scaled to zero is "
                             "forgotten between polls and never activated")
    scaler.add_argument("--carbon-config", metavar="FILE",
                        help="YAML or JSON carbon provider settings, e.g. {provider: electricitymaps, "
                             "auth_token: ..., zones: [...]} (default: the scenario's fixed values)")
    scaler.add_argument("--carbon-static", type=float, metavar="G_PER_KWH",
                        help="one carbon intensity (g/kWh) for every zone of the scenario")
    scaler.add_argument("--plan-inline", action="store_true",
                        help="plan on a thread of the server instead of a worker process (debugging; "
                             "answers slow down while a large plan is made)")
    scaler.add_argument("--reflection", action="store_true", help="enable gRPC server reflection (for grpcurl)")
    scaler.add_argument("--grace-s", type=float, default=10.0,
                        help="on SIGTERM, how long in-flight calls may take to finish (default 10)")
    from wattwise.telemetry.prometheus import connection

    prometheus = parser.add_argument_group(
        "Prometheus", "where ScaledObjects' `query` demand, the replicas' FPS and the refits' history come from, "
                      "and how to reach it (KEDA does not pass a TriggerAuthentication on to external scalers)")
    prometheus.add_argument("--prometheus", metavar="URL",
                            help="Prometheus URL for ScaledObjects' `query` metadata, the replicas' FPS and "
                                 "refits (live mode)")
    connection.add_arguments(prometheus)
    module = _extender_module()
    if module is not None:
        parser.conflict_handler = "resolve"
        module.add_extender_arguments(parser)


def run(args: argparse.Namespace) -> int:
    # urllib3 logs every retry of a Prometheus query as a warning; the error we report says it once
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    if not (args.scaler or args.extender or args.demo):
        print("wattwise serve: choose --scaler, --extender or --demo", file=sys.stderr)
        return 2
    try:
        check_kube_config(args, os.environ)
        check_ports(args)
        check_prometheus(args)
        check_plan_clock(args)
        check_serving(args)
        args.network = _zone_network(args.zone_network)
        return asyncio.run(_serve(args))
    except ValueError as e:
        print(f"wattwise serve: error: {e}", file=sys.stderr)
        return 2


def check_kube_config(args, environ) -> None:
    """Before anything starts: the Kubernetes API this run needs is configured, the way the
    kubernetes client will look for it (--in-cluster, --kubeconfig, $KUBECONFIG, ~/.kube/config)."""
    module = _extender_module()
    if module is None or not module.wants_kube_api(args):
        return
    if getattr(args, "in_cluster", False):
        from kubernetes.config.incluster_config import (SERVICE_HOST_ENV_NAME, SERVICE_PORT_ENV_NAME,
                                                        SERVICE_TOKEN_FILENAME)

        if not (environ.get(SERVICE_HOST_ENV_NAME) and environ.get(SERVICE_PORT_ENV_NAME)):
            raise InvalidInputError("--in-cluster", f"not in a pod: ${SERVICE_HOST_ENV_NAME} and "
                                    f"${SERVICE_PORT_ENV_NAME} are not set", "outside a cluster, give --kubeconfig FILE")
        if not os.path.isfile(SERVICE_TOKEN_FILENAME):
            raise InvalidInputError("--in-cluster", f"no service account token at {SERVICE_TOKEN_FILENAME}",
                                    "let the pod mount its token (automountServiceAccountToken)")
        return
    if args.kubeconfig:
        missing = [p for p in args.kubeconfig.split(os.pathsep) if not os.path.isfile(os.path.expanduser(p))]
        if missing:
            raise InvalidInputError("--kubeconfig", f"no such file: {missing[0]}")
        return
    if "KUBECONFIG" in environ:
        if not any(os.path.isfile(os.path.expanduser(p)) for p in environ["KUBECONFIG"].split(os.pathsep) if p):
            raise InvalidInputError("$KUBECONFIG", f"no such file: {environ['KUBECONFIG']!r}",
                                    "point it at a kubeconfig, or give --kubeconfig FILE")
        return
    if not os.path.isfile(os.path.expanduser("~/.kube/config")):   # only the extender gets here
        raise InvalidInputError("--extender", "no Kubernetes configuration: no --kubeconfig, $KUBECONFIG or ~/.kube/config, "
                                      "and not --in-cluster",
                                "give --kubeconfig FILE, or --in-cluster in a pod; --demo needs no cluster")


def check_prometheus(args) -> None:
    """Before anything starts: the --prometheus-* client options can work (files readable, a key
    with its certificate, one kind of Authorization, well-formed headers). Sets
    `args.prometheus_auth`, which every Prometheus client of this run uses."""
    from wattwise.telemetry.prometheus import connection

    args.prometheus_auth = connection.from_args(args)
    if args.prometheus_auth.configured:
        log.info("Prometheus %s: %s", args.prometheus, args.prometheus_auth.describe())


def check_serving(args) -> None:
    """Before anything starts: the numbers and TLS files the servers and watches use can work (a
    zero resync period would list in a tight loop; a bad certificate found only after the first
    sync would cost a crash-looping pod 20 s a try)."""
    from wattwise.models.errors import require_positive
    from wattwise.scaler.tls import metrics_tls

    require_positive(args.grace_s, "--grace-s", "give seconds for in-flight calls to finish, e.g. 10", zero_ok=True)
    require_positive(args.registration_ttl_s, "--registration-ttl-s", "give seconds, e.g. 600")
    if args.metrics_tls != "off" and args.metrics_port is None:
        raise InvalidInputError("--metrics-tls", f"{args.metrics_tls} applies to the metrics port, and none is given",
                                "give --metrics-port PORT, or leave --metrics-tls off")
    metrics_tls(args.metrics_tls, args.tls_cert, args.tls_key, args.tls_client_ca)   # files loaded, then dropped
    module = _extender_module()
    if (args.extender or args.demo) and module is not None:
        module.check_extender_args(args)


def check_live_inputs(args) -> None:
    """Before anything starts: the files and values the scaler reads (the scenario, carbon
    settings, the models directory, the grid zone map, the Prometheus URL) can work, so a bad one
    is the first line printed, not the last, after the Kubernetes watches have started and
    retried. Nothing is kept: no provider is built (its worker would start), the rest is read
    again when serving."""
    if args.scenario is not None:
        from wattwise.models.scenario import load_scenario

        load_scenario(args.scenario)
    if args.carbon_config is not None and args.carbon_static is not None:
        raise ValueError("give --carbon-config or --carbon-static, not both")
    if args.carbon_config is not None:
        from wattwise.scaler.carbon import load_carbon_config
        from wattwise.telemetry.carbon.factory import parse_carbon_settings

        parse_carbon_settings(load_carbon_config(args.carbon_config))
    if args.carbon_static is not None:
        from wattwise.scaler.carbon import EveryZoneStatic

        EveryZoneStatic(args.carbon_static)
    if args.models:
        from wattwise.telemetry.model_dir import ModelDirectory

        ModelDirectory(args.models)
    if getattr(args, "grid_zone_map", None):
        from wattwise.telemetry.grid_zones import load_user_map

        load_user_map(args.grid_zone_map)
    if args.prometheus:
        from wattwise.telemetry.prometheus import PrometheusClient

        PrometheusClient(args.prometheus, auth=args.prometheus_auth)


def check_plan_clock(args) -> None:
    """Before anything starts: --refresh-s is a positive number, --scale-down-window,
    --replan-min-interval and --forecast-backfill durations (0 allowed). Sets `args.scale_down_window_s` (None: the
    scenario's, else the planner's default 300 s) and `args.replan_min_interval_s`, which `_build`
    plumbs into the refresher's settings (`plan_clock`)."""
    from wattwise.models.replan import ReplanSettings
    from wattwise.telemetry.timeparse import parse_duration_s

    if not (math.isfinite(args.refresh_s) and args.refresh_s > 0):
        raise InvalidInputError("--refresh-s", f"{args.refresh_s!r} is not a positive number of seconds",
                                "give e.g. 15, or 0.25 for a plan every quarter second")
    window = args.scale_down_window
    args.scale_down_window_s = None if window is None else parse_duration_s(window, "--scale-down-window")
    args.replan_min_interval_s = parse_duration_s(args.replan_min_interval, "--replan-min-interval")
    args.forecast_backfill_s = parse_duration_s(args.forecast_backfill, "--forecast-backfill")
    most = ReplanSettings().max_interval_s
    if args.replan_min_interval_s > most:
        raise InvalidInputError("--replan-min-interval", f"{args.replan_min_interval} is longer than the "
                                f"{most / 60:g}m a plan is kept at most", f"give at most {most / 60:g}m")


def plan_clock(settings, args):
    """`settings` (RefresherSettings) with the plan clock's flags (`check_plan_clock`) applied."""
    from dataclasses import replace

    planner = settings.planner
    if getattr(args, "scale_down_window_s", None) is not None:
        planner = replace(planner, scale_down_window_s=args.scale_down_window_s)
    replan = replace(settings.replan, min_interval_s=getattr(args, "replan_min_interval_s",
                                                             settings.replan.min_interval_s))
    backfill_s = getattr(args, "forecast_backfill_s", settings.forecast_backfill_s)
    return replace(settings, planner=planner, replan=replan, forecast_backfill_s=backfill_s)


PORT_HINT = "stop what listens there, or choose another port; 0 picks a free one"


def check_ports(args) -> None:
    """Before anything starts: each port this run listens on is a port, given once, and free."""
    ports = []
    if args.scaler or args.demo:
        ports += [("--grpc-port", args.grpc_port), ("--health-port", args.health_port),
                  ("--metrics-port", args.metrics_port)]
    if (args.extender or args.demo) and _extender_module() is not None:
        ports += [("--http-port", args.http_port), ("--extender-health-port", args.extender_health_port)]
    seen: dict[int, str] = {}
    for flag, port in ports:
        if port is None or port == 0:
            continue
        if not 0 < port < 65536:
            raise InvalidInputError(flag, f"{port} is not a port", "give 1..65535, or 0 to pick a free one")
        if port in seen:
            raise InvalidInputError(flag, f"port {port} is also given to {seen[port]}", "give each its own port")
        seen[port] = flag
    for port, flag in seen.items():
        taken = _taken(args.host, port)
        if taken:
            raise InvalidInputError(flag, f"{taken} is already in use", PORT_HINT)


def _taken(host: str, port: int) -> str | None:
    """The address already in use when binding host:port as the servers will (SO_REUSEADDR, so a
    port with only closing connections counts as free), else None."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise InvalidInputError("--host", f"cannot resolve {host!r}: {e.strerror}") from None
    for family, kind, proto, _, address in infos:
        error = _bind_error(family, kind, proto, address)
        if error is not None and error.errno == errno.EADDRINUSE:
            return host_port(host, port)
        if error is not None:
            _raise_cannot_listen("--host", host_port(host, port), error)
    return None


def _bind_error(family, kind, proto, address) -> OSError | None:
    """Why binding `address` fails as the servers bind it (`listen.as_servers_bind`: an IPv6
    address dual-stack, so a port taken on IPv4 is found taken here too), or None."""
    with socket.socket(family, kind, proto) as probe:
        as_servers_bind(probe)
        try:
            probe.bind(address)
        except OSError as e:
            return e
    return None


def _raise_cannot_listen(flag: str, address: str, error: OSError | None) -> None:
    """One line: `address` cannot be listened on, with the OS's reason and what to do about it."""
    reason = (error.strerror or str(error)) if error is not None else "the server could not bind it"
    hint = None
    if error is not None and error.errno == errno.EADDRINUSE:
        hint = PORT_HINT
    elif error is not None and error.errno == errno.EADDRNOTAVAIL:
        hint = "give --host an address of this machine, or 0.0.0.0 (IPv4) or :: (IPv6 and IPv4)"
    raise InvalidInputError(flag, f"cannot listen on {address}: {reason}", hint) from None


def _probe(address: str) -> OSError | None:
    """Why `host:port` (IPv6 in brackets, as gRPC names it) cannot be bound now, or None."""
    host, _, port = address.rpartition(":")
    try:
        infos = socket.getaddrinfo(host.strip("[]") or None, int(port), type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except (socket.gaierror, ValueError) as e:
        return OSError(errno.EINVAL, f"cannot resolve {host!r}: {e}")
    for family, kind, proto, _, sockaddr in infos:
        error = _bind_error(family, kind, proto, sockaddr)
        if error is not None:
            return error
    return None


def _raise_bind_failed(flag: str, e: BaseException) -> None:
    """A server that cannot bind (grpc: RuntimeError naming the address, whose reason the probe of
    the same address finds; asyncio and http.server: OSError) becomes a one-line error naming the
    OS's reason; anything else returns."""
    if isinstance(e, OSError) and e.errno is not None:
        raise InvalidInputError(flag, f"cannot listen: {e.strerror or e}",
                                PORT_HINT if e.errno == errno.EADDRINUSE else None) from None
    m = re.search(r"Failed to bind to address (\S+?);", str(e)) if isinstance(e, RuntimeError) else None
    if m:
        _raise_cannot_listen(flag, m.group(1), _probe(m.group(1)))


def _start_cluster(args):
    """The process's one list-then-watch per Kubernetes resource (nodes, pods, runtime classes,
    ScaledObjects, Deployments, StatefulSets) when the Kubernetes API is configured: the scaler
    (make-before-break surge), the extender (node cache, short classes) and the deletion-cost
    reconciler all read it. None: the scaler answers the plan's replicas."""
    module = _extender_module()
    if module is None or not module.wants_kube_api(args):
        if args.scaler and not args.demo:
            log.info("scaler: no Kubernetes API configured (--in-cluster or --kubeconfig), so running pods are "
                     "unknown: answering the plan's replicas, without a make-before-break surge")
        return None
    from wattwise.kube.cluster import KubeCluster

    cluster = KubeCluster.connect(args.kubeconfig, args.in_cluster, resync_s=args.node_resync_s)  # one-line errors
    if not args.scaler:
        why = "for the extender"
    elif getattr(args, "set_deletion_cost", False):
        why = ("the scaler adds a make-before-break surge while planned pods are not ready (not for "
               "StatefulSets)")
    else:
        why = ("the scaler answers the plan's replicas, without a make-before-break surge: the ReplicaSet "
               "controller would remove the new pods as often as the off-plan ones without --set-deletion-cost")
    log.info("watching the Kubernetes API (%s): %s", ", ".join(cluster.stores), why)
    return cluster.start()


def _build(args, cluster=None, pods=None, events=None, refitter=None):
    """The scaler (servers not started) and its refresher: the demo, a scenario, or the cluster
    (`events`: an EventPoster for Events on the ScaledObjects whose planned replicas change;
    `refitter`: what it learns and cannot write into --models is planned with all the same)."""
    from wattwise.models.model_set import StaticModels
    from wattwise.models.snapshot import Objective
    from wattwise.scaler.answer import Rollout
    from wattwise.scaler.app import build_demo, build_scaler, settings_from_snapshot
    from wattwise.scaler.carbon import carbon_source
    from wattwise.scaler.planning import InlinePlanner, ProcessPlanner
    from wattwise.scaler.server import ServerConfig
    from wattwise.scaler.tls import server_credentials

    tls = server_credentials(args.tls_cert, args.tls_key, args.tls_client_ca)
    config = ServerConfig(args.host, args.grpc_port, args.health_port, args.reflection, args.grace_s)
    models = None
    if args.models:
        from wattwise.telemetry.model_dir import ModelDirectory
        models = ModelDirectory(args.models)
        if refitter is not None:
            from wattwise.telemetry.learned import LearnedOverlay
            models = refitter.learned = LearnedOverlay(models)
    if args.demo:
        from wattwise.models.scenario import load_scenario

        if args.carbon_config or args.carbon_static is not None:
            raise ValueError("--carbon-config/--carbon-static apply to live mode (--scaler), not --demo")
        snapshot = load_scenario(args.scenario or DEFAULT_SCENARIO).snapshot
        from wattwise.scaler.pod_counts import StaticPodCounts   # the demo runs no pods, as the simulator starts

        return build_demo(snapshot, settings=plan_clock(settings_from_snapshot(snapshot, args.refresh_s), args),
                          config=config, tls=tls, pods=StaticPodCounts()), snapshot
    planner = InlinePlanner() if args.plan_inline else ProcessPlanner(timeout_s=max(120.0, 4 * args.refresh_s))
    common = dict(demand=_demand_port(args), config=config, tls=tls, registry_ttl_s=args.registration_ttl_s,
                  planner=planner, pods=pods)
    if args.scenario is None:
        if cluster is None:
            raise InvalidInputError("--scenario", "nothing to plan: no Kubernetes API and no scenario file",
                                    "give --in-cluster or --kubeconfig FILE to plan the cluster, --scenario FILE "
                                    "for one described by hand, or --demo")
        from wattwise.models.snapshot import PlannerSettings
        from wattwise.scaler.refresher import RefresherSettings

        carbon = carbon_source(None, args.carbon_config, args.carbon_static)
        try:
            inventory, registry, source = _cluster_inputs(args, cluster, models, _provider_name(carbon))
        except BaseException:
            from wattwise.scaler.carbon import close as close_carbon
            close_carbon(carbon)          # its worker, if it started one: nothing is left running
            raise
        common["rollout"] = Rollout(deletion_cost_set=bool(getattr(args, "set_deletion_cost", False)),
                                    target_kind=lambda key: source.current().kinds.get(key))
        settings = plan_clock(RefresherSettings(interval_s=args.refresh_s, objective=Objective(args.objective or "energy"),
                                                planner=PlannerSettings(), network=args.network), args)
        scaler = build_scaler(inventory=inventory, carbon=carbon, catalogue_by_key=registry.bases, settings=settings, registry=registry,
                              models=models, replica_fps=_replica_fps(args, cluster), **common)
        if refitter is not None:      # names as the plan has them, and where each class's power curve is from
            refitter.live = functools.partial(_live_names, scaler.refresher, inventory)
        if events is not None:
            from wattwise.kube.events import ReplicaEvents
            scaler.refresher.add_listener(ReplicaEvents(cluster.scaled_objects, lambda: source.current().requests,
                                                        events))
        _first_plan(scaler, cluster)
        return scaler, None
    from wattwise.models.scenario import load_scenario
    from wattwise.scaler.sources import ScenarioInventory, catalogue

    snapshot = load_scenario(args.scenario).snapshot
    settings = plan_clock(settings_from_snapshot(snapshot, args.refresh_s), args)
    if args.objective:
        from dataclasses import replace
        settings = replace(settings, objective=Objective(args.objective))
    scaler = build_scaler(inventory=ScenarioInventory(snapshot), carbon=carbon_source(snapshot, args.carbon_config,
                                                                                         args.carbon_static),
                          catalogue_by_key=catalogue(snapshot), settings=settings,
                          models=models or StaticModels(snapshot.models, origin="the scenario's energy_models"),
                          rollout=Rollout(deletion_cost_set=bool(getattr(args, "set_deletion_cost", False))),
                          **common)
    scaler.refresher.refresh_once()       # the first plan (starts the worker), before any port opens
    return scaler, snapshot


def _zone_network(path: str | None):
    """The round trips between grid zones from --zone-network (None without it)."""
    if path is None:
        return None
    import yaml

    from wattwise.models.network import Network

    try:
        raw = yaml.safe_load(open(path).read())
    except OSError as e:
        raise InvalidInputError("--zone-network", f"cannot read {path}: {e.strerror}") from None
    except yaml.YAMLError:
        raise InvalidInputError("--zone-network", f"{path} is not valid YAML") from None
    try:
        return Network.parse(raw, "--zone-network")
    except InvalidInputError as e:
        raise InvalidInputError(e.path, f"{path}: {e.problem}", e.hint) from None


def _refitter(args):
    """The background refit of --models from --prometheus, or None (off, or nothing to refit).
    Its flags are checked here, before anything starts, whether or not refits run."""
    from wattwise.telemetry.prometheus.promql import check_label_value
    from wattwise.telemetry.timeparse import parse_duration_s

    asked = args.refit_every is not None
    args.refit_every = args.refit_every or DEFAULT_REFIT_EVERY
    every_s = parse_duration_s(args.refit_every, "--refit-every")
    for flag, value in (("--kepler-zone", args.kepler_zone), ("--workload-label", args.workload_label)):
        try:
            check_label_value(value)
        except ValueError:
            raise InvalidInputError(flag, f"{value!r} is not a label value PromQL can quote",
                                    "give letters, digits and _ . : / - only") from None
    window_s = parse_duration_s(args.refit_window, "--refit-window")
    scrape_s = parse_duration_s(args.scrape_interval, "--scrape-interval")
    if scrape_s <= 0:
        raise InvalidInputError("--scrape-interval", f"{args.scrape_interval!r} is not a positive duration",
                                "give Prometheus's scrape interval for Kepler, e.g. 15s or 30s")
    if every_s > 0 and window_s < 10 * scrape_s:
        raise InvalidInputError("--refit-window", f"{args.refit_window} holds fewer than 10 scrapes of "
                                f"{args.scrape_interval}", "give a window of hours, e.g. 24h")
    if asked and every_s > 0 and not args.demo and not (args.prometheus and args.models):
        log.warning("--refit-every %s: no refits without %s (refits read their history from Prometheus and "
                    "keep what they learn beside --models)", args.refit_every,
                    " and ".join(f for f, v in (("--prometheus", args.prometheus), ("--models", args.models)) if not v))
    if args.demo or every_s <= 0 or not (args.prometheus and args.models):
        return None
    from wattwise.telemetry.fit_cli import FitJob
    from wattwise.telemetry.prometheus.schema import KeplerSchema
    from wattwise.telemetry.prometheus.source import SourceSettings
    from wattwise.telemetry.refit import Refitter

    schema = None if args.kepler_schema == "auto" else KeplerSchema(args.kepler_schema)

    job = FitJob(args.prometheus, SourceSettings(workload_label=args.workload_label, zone=args.kepler_zone,
                                                 scrape_interval_s=scrape_s, schema=schema,
                                                 fps_metric=args.fps_metric or "infer_fps",
                                                 drop_metric=args.drop_metric or None,
                                                 requested_metric=args.requested_metric or None),
                 step_s=scrape_s, prometheus_auth=args.prometheus_auth)
    refitter = Refitter(job, args.models, every_s=every_s, window_s=window_s)   # --models is a directory
    if not os.access(args.models, os.W_OK):
        log.warning("--models %s is not writable (a ConfigMap?): models refits accept are planned with from "
                    "memory (learned, not persisted) and lost at restart; mount a writable volume there to keep "
                    "them", args.models)
    return refitter


def _live_names(refresher, inventory=None):
    """How the plan in use names nodes' classes and workloads (None: no plan yet), and with the
    cluster's inventory, where each class's power curve comes from, for refits."""
    from wattwise.telemetry.refit import LiveNames

    state = refresher.state()
    if state is None:
        return None
    snap = state.default_view.snapshot
    sources = None if inventory is None else {c: chosen.source.value
                                              for c, chosen in inventory.current().curve_sources.items()}
    return LiveNames({n.name: n.node_class for n in snap.nodes}, frozenset(w.key for w in snap.workloads), sources)


def _replica_fps(args, cluster):
    """Delivered and dropped FPS per replica now, for capacity learned from drops (None: off)."""
    if not (args.prometheus and args.fps_metric and args.drop_metric):
        return None
    from wattwise.telemetry.prometheus.replica_fps import PrometheusReplicaFps, ReplicaFpsSettings
    from wattwise.telemetry.timeparse import parse_duration_s

    return PrometheusReplicaFps(args.prometheus, cluster.workload_pods(),
                                ReplicaFpsSettings(fps_metric=args.fps_metric, drop_metric=args.drop_metric,
                                                   requested_metric=args.requested_metric or None,
                                                   scrape_interval_s=parse_duration_s(args.scrape_interval,
                                                                                      "--scrape-interval")),
                                auth=args.prometheus_auth)


def _demand_port(args):
    from wattwise.scaler.demand import DemandReading, PromQLDemand

    if args.prometheus:
        return PromQLDemand(args.prometheus, timeout_s=min(10.0, max(1.0, args.refresh_s / 2)),
                            auth=args.prometheus_auth)

    class _NoPrometheus:
        def read(self, query, at_s):
            return DemandReading(None, False, "no --prometheus given; use `streams` metadata or pass --prometheus")
    return _NoPrometheus()


# Providers whose regions are not Electricity Maps' zone keys (WattTime: CAISO_NORTH; the
# carbon-aware-sdk: Azure's eastus; the UK API: its own regions), which the bundled cloud-region
# table gives: sent to them, such a key is refused, and the node gets the conservative default.
OWN_REGION_NAMES = frozenset({"watttime", "carbon-aware-sdk", "uk-carbon-intensity"})


def _provider_name(carbon) -> str:
    return str(getattr(getattr(carbon, "provider", None), "name", "") or "")


def _cluster_inputs(args, cluster, models, provider: str = ""):
    """The refresher's node inventory and workloads, read from the cluster's stores. `provider`:
    the carbon provider's name; one that names regions its own way does without the bundled
    cloud-region table (its keys are Electricity Maps zones): nodes are mapped by the
    wattwise.io/grid-zone label or --grid-zone-map only."""
    from wattwise.kube.inputs import ClusterInventory, ClusterWorkloadSource, scaler_address_matcher
    from wattwise.scaler.cluster_registry import ClusterRegistry
    from wattwise.telemetry.grid_zones import bundled_cloud_regions, bundled_measured_curves, load_user_map

    cloud_regions = bundled_cloud_regions()
    if provider in OWN_REGION_NAMES:
        cloud_regions = {}
        log.info("carbon from %s, which names its regions its own way: the bundled cloud-region table (Electricity "
                 "Maps zones) is not used; give each node its %s region with the wattwise.io/grid-zone label or "
                 "--grid-zone-map (nodes without one count at the provider's default intensity)", provider, provider)

    source = ClusterWorkloadSource(cluster, scaler_address_matcher(args.scaler_service, _own_namespace(args)))
    registry = ClusterRegistry(source)
    inventory = ClusterInventory(
        cluster, user_zone_map=load_user_map(args.grid_zone_map) if args.grid_zone_map else None,
        cloud_regions=cloud_regions, measured_curves=bundled_measured_curves(),
        fitted_curves=(lambda: models.current().node_power) if models is not None else None,
        managed_workloads=lambda: frozenset(r.workload_key for r in source.current().requests))
    return inventory, registry, source


SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def _own_namespace(args, path: str = SERVICE_ACCOUNT_NAMESPACE) -> str | None:
    """The namespace this pod runs in (in a cluster: its service account's), so a ScaledObject
    naming a same-named Service of another installation is not planned here; None outside one."""
    if not getattr(args, "in_cluster", False):
        return None
    try:
        with open(path) as f:
            return f.read().strip() or None
    except OSError:
        log.warning("cannot read %s: ScaledObjects naming --scaler-service %s in any namespace are planned here",
                    path, args.scaler_service)
        return None


FIRST_SYNC_S = 20.0


def _first_plan(scaler, cluster) -> None:
    """Wait (a little) for the API server's first lists, then plan once before any port opens; if
    the lists take longer, the refresher plans as soon as they arrive and /readyz says why not yet."""
    if not cluster.wait_synced(FIRST_SYNC_S, ["nodes", "pods", "runtimeclasses"]):
        log.warning("the Kubernetes API has not answered every list within %.0f s:\n%s", FIRST_SYNC_S,
                    cluster.status())
    cluster.wait_synced(2.0, ["scaledobjects", "deployments", "statefulsets"])
    scaler.refresher.refresh_once()


async def _serve(args) -> int:
    from wattwise.scaler.carbon import close as close_carbon

    run_scaler = args.scaler or args.demo
    if getattr(args, "set_deletion_cost", False) and not args.extender:
        raise ValueError("--set-deletion-cost runs with the extender against the Kubernetes API "
                         "(--extender, not --demo)")
    refitter = _refitter(args)           # its flags checked before anything starts
    check_live_inputs(args)
    budget = ShutdownBudget(args.grace_s)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # Whatever started is stopped, last first, however this ends: a port found taken (or any
    # failure) half-way through start-up leaves nothing running.
    async with contextlib.AsyncExitStack() as started:
        cluster = _start_cluster(args)
        pods = events = None
        if cluster is not None:
            started.callback(lambda: cluster.stop(budget.left_s(5.0)))
            from wattwise.scaler.pod_counts import kube_pod_counts
            pods = kube_pod_counts(cluster)
            if args.scenario is None:     # planning the cluster's ScaledObjects: Events on them
                from wattwise.kube.events import EventPoster, kube_event_post
                events = EventPoster(kube_event_post(cluster.api_client)).start()
                started.callback(lambda: events.stop(budget.left_s(2.0)))
        scaler, snapshot = _build(args, cluster, pods, events, refitter)
        _freeze_startup_heap()
        started.callback(close_carbon, scaler.refresher.carbon)
        started.callback(lambda: scaler.refresher.stop(budget.left_s(5.0)))
        if run_scaler:
            try:
                await scaler.server.start()
            except RuntimeError as e:
                await _stop_quietly(scaler.server)
                _raise_bind_failed("--grpc-port/--health-port", e)
                raise
            started.push_async_callback(lambda: scaler.server.stop(budget.left_s()))
            if args.metrics_port is not None:
                from wattwise.scaler.tls import metrics_tls

                try:
                    metrics_server, _ = scaler.metrics.serve(args.host, args.metrics_port, metrics_tls(
                        args.metrics_tls, args.tls_cert, args.tls_key, args.tls_client_ca))
                except OSError as e:
                    _raise_bind_failed("--metrics-port", e)
                    raise
                started.callback(metrics_server.shutdown)
                state = scaler.refresher.state()
                if state is not None:
                    scaler.metrics.observe_state(state, len(scaler.registry))
        scaler.refresher.start()          # the plan both doors read: the extender alone plans too
        if refitter is not None:
            scaler.refresher.refit_report = refitter.last_report     # the plan view says what refits decided
            if refitter.live is None:   # set by _build with the cluster's inventory
                refitter.live = functools.partial(_live_names, scaler.refresher)   # nodes' classes, pairs planned
            refitter.start()
            started.callback(lambda: refitter.stop(budget.left_s(1.0)))   # a refit under way writes atomically
            log.info("refitting the energy models every %s over the last %s (quality-gated)", args.refit_every,
                     args.refit_window)
        extender = None
        if args.extender or args.demo:
            try:
                extender = _start_extender(args, scaler.refresher, cluster)
            except OSError as e:
                _raise_bind_failed("--http-port/--extender-health-port", e)
                raise
            if extender is not None:
                started.callback(lambda: extender.stop(budget.left_s(5.0)))
        if args.demo and run_scaler:
            _print_demo(snapshot, args, scaler.server.grpc_port, scaler.server.health_port, extender)
        announce(f"ready: scaler gRPC on {host_port(args.host, scaler.server.grpc_port)}, health on "
                 f"{host_port(args.host, scaler.server.health_port)}" if run_scaler else "ready",
                 getattr(args, "log_json", False), __name__)
        await stop.wait()
        budget.start()
        log.info("signal received; stopping within --grace-s %g s", args.grace_s)
    return 0


def _freeze_startup_heap() -> None:
    """Keep what start-up made (imported libraries, the API server's first lists, the first plan)
    out of every later cyclic garbage collection. A full collection walks every tracked object
    while holding the GIL, so every thread stops meanwhile: with all of that in reach, one took
    0.2-0.9 s at 1,000 ScaledObjects and 200 nodes, every 20-30 s, and each was a stall of both
    doors. Reference counting still frees what start-up made as usual; only cyclic garbage among
    it is never collected (made once, so bounded)."""
    gc.collect()
    gc.freeze()
    log.debug("%d objects from start-up kept out of garbage collection", gc.get_freeze_count())


class ShutdownBudget:
    """What is left of --grace-s once stopping starts. Each part's stop waits at most its own cap
    and what is left, so the whole shutdown ends within the grace (plus what a part overruns
    its wait by), before the kubelet's SIGKILL at terminationGracePeriodSeconds; the parts stopped
    first (the extender, the refitter) cannot eat the gRPC calls' grace. Before `start` (a
    failed start-up unwinding), each part gets its cap, within the grace."""

    def __init__(self, grace_s: float, clock=time.monotonic):
        self.grace_s, self._clock = grace_s, clock
        self._deadline_s: float | None = None

    def start(self) -> None:
        self._deadline_s = self._clock() + self.grace_s

    def left_s(self, cap_s: float = math.inf) -> float:
        left_s = self.grace_s if self._deadline_s is None else max(0.0, self._deadline_s - self._clock())
        return min(cap_s, left_s)


async def _stop_quietly(server) -> None:
    """Stop a gRPC server whose start failed half-way (some ports bound, not serving)."""
    try:
        await server.stop(0)
    except Exception:  # noqa: BLE001 - the start failure is what gets reported
        log.debug("stopping the scaler after a failed start", exc_info=True)


def _start_extender(args, source, cluster=None):
    module = _extender_module()
    if module is None:
        print(f"wattwise serve: the scheduler extender is not in this build ({EXTENDER_MODULE} is missing); "
              "running the scaler only", file=sys.stderr)
        return None
    handle = module.start_extender_from_args(args, source, cluster)
    announce(f"scheduler extender on port {handle.port}", getattr(args, "log_json", False), __name__)
    return handle


def _print_demo(snapshot, args, grpc_port: int, health_port: int, extender) -> None:
    from wattwise.scaler.sources import demo_metadata

    host = "127.0.0.1" if args.host in ("0.0.0.0", "", "::") else args.host
    address = host_port(host, grpc_port)
    out = [f"WattWise demo: scenario {args.scenario or DEFAULT_SCENARIO}", "",
           "Each bundled workload is selected by this ScaledObject trigger metadata:"]
    for w in sorted(snapshot.workloads, key=lambda w: w.key):
        md = demo_metadata(w)
        out.append(f"\n# {w.key}: ScaledObject {w.name} in namespace {w.namespace}")
        out.append("triggers:\n  - type: external\n    metadata:")
        out.append(f"      scalerAddress: '{address}'")   # quoted: an IPv6 [::1]:port is a YAML flow sequence
        for k, v in md.items():
            out.append(f"      {k}: '{v}'")
        flags = " ".join(f"-m {k}='{v}'" for k, v in md.items())
        out.append(f"# try: wattwise scaler-call --address '{address}' --namespace {w.namespace} --name {w.name} {flags}")
    out.append(f"\nHealth: grpc.health.v1 on {host_port(host, health_port)} (plaintext)")
    print("\n".join(out), flush=True)
