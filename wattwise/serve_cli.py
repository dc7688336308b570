"""`wattwise serve`: the KEDA external scaler (--scaler), the scheduler extender (--extender), or
both on the bundled scenario with recorded telemetry (--demo).

Live mode takes the cluster (node classes, nodes, zones, workload catalogue, objective) from
--scenario, each ScaledObject's demand from its PromQL `query` against --prometheus, and carbon
intensity from a provider (--carbon-config, --carbon-static; else the scenario's fixed values).
It plans in a worker process, so re-planning never slows the answers (--plan-inline: on a thread).
SIGTERM or Ctrl-C stops gracefully: health NOT_SERVING, streams end with OK, in-flight calls
finish within --grace-s, exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import signal
import sys
from pathlib import Path

import wattwise

log = logging.getLogger(__name__)

DEFAULT_SCENARIO = Path(wattwise.__file__).resolve().parents[1] / "scenarios" / "metro-retail.yaml"
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
    tls.add_argument("--tls-cert", help="PEM server certificate for the gRPC port (turns on TLS)")
    tls.add_argument("--tls-key", help="PEM private key of --tls-cert")
    tls.add_argument("--tls-client-ca", help="PEM CA; client certificates signed by it are required (mTLS)")
    scaler = parser.add_argument_group("scaler")
    scaler.add_argument("--scenario", default=str(DEFAULT_SCENARIO),
                        help="scenario file: the cluster, zones and workload catalogue (default: the bundled one)")
    scaler.add_argument("--prometheus", help="Prometheus URL for ScaledObjects' `query` metadata (live mode)")
    scaler.add_argument("--refresh-s", type=float, default=15.0,
                        help="plan refresh interval; also the plan clock's resolution (default 15)")
    scaler.add_argument("--registration-ttl-s", type=float, default=600.0,
                        help="forget a ScaledObject KEDA has not called for this long (default 600)")
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
    module = _extender_module()
    if module is not None:
        parser.conflict_handler = "resolve"
        module.add_extender_arguments(parser)


def run(args: argparse.Namespace) -> int:
    if not (args.scaler or args.extender or args.demo):
        print("wattwise serve: choose --scaler, --extender or --demo", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_serve(args))
    except ValueError as e:
        print(f"wattwise serve: error: {e}", file=sys.stderr)
        return 2


def _start_pod_watch(args):
    """The one pod watch (running/ready WattWise pods per node) when the Kubernetes API is
    configured: the scaler's make-before-break surge, the extender's short classes and the
    deletion-cost reconciler share it. None: the scaler answers the plan's replicas."""
    module = _extender_module()
    if module is None or not module.wants_kube_api(args):
        if args.scaler and not args.demo:
            log.info("scaler: no Kubernetes API configured (--in-cluster or --kubeconfig), so running pods are "
                     "unknown: answering the plan's replicas, without a make-before-break surge")
        return None
    pods = module.start_pod_watch_from_args(args)
    log.info("watching pods labelled wattwise.io/workload: %s", "the scaler adds a make-before-break surge "
             "while planned pods are not ready" if args.scaler else "for the extender")
    return pods


def _build(args, pods=None):
    from wattwise.models.scenario import load_scenario
    from wattwise.scaler.app import build_demo, build_scaler, settings_from_snapshot
    from wattwise.scaler.carbon import carbon_source
    from wattwise.scaler.demand import DemandReading, PromQLDemand
    from wattwise.scaler.server import ServerConfig
    from wattwise.scaler.planning import InlinePlanner, ProcessPlanner
    from wattwise.scaler.sources import ScenarioInventory, catalogue
    from wattwise.scaler.tls import server_credentials

    scenario = load_scenario(args.scenario)
    snapshot = scenario.snapshot
    tls = server_credentials(args.tls_cert, args.tls_key, args.tls_client_ca)
    config = ServerConfig(args.host, args.grpc_port, args.health_port, args.reflection, args.grace_s)
    if args.demo:
        if args.carbon_config or args.carbon_static is not None:
            raise ValueError("--carbon-config/--carbon-static apply to live mode (--scaler), not --demo")
        return build_demo(snapshot, interval_s=args.refresh_s, config=config, tls=tls), snapshot
    carbon = carbon_source(snapshot, args.carbon_config, args.carbon_static)
    if args.prometheus:
        demand = PromQLDemand(args.prometheus, timeout_s=min(10.0, max(1.0, args.refresh_s / 2)))
    else:
        class _NoPrometheus:
            def read(self, query, at_s):
                return DemandReading(None, False, "no --prometheus given; use `streams` metadata or pass --prometheus")
        demand = _NoPrometheus()
    planner = InlinePlanner() if args.plan_inline else ProcessPlanner(timeout_s=max(120.0, 4 * args.refresh_s))
    scaler = build_scaler(inventory=ScenarioInventory(snapshot), demand=demand, carbon=carbon,
                          catalogue_by_key=catalogue(snapshot), settings=settings_from_snapshot(snapshot, args.refresh_s),
                          config=config, tls=tls, registry_ttl_s=args.registration_ttl_s, planner=planner,
                          pods=pods)
    scaler.refresher.refresh_once()       # the first plan (starts the worker), before any port opens
    return scaler, snapshot


async def _serve(args) -> int:
    from wattwise.scaler.carbon import close as close_carbon

    run_scaler = args.scaler or args.demo
    if getattr(args, "set_deletion_cost", False) and not args.extender:
        raise ValueError("--set-deletion-cost runs with the extender against the Kubernetes API "
                         "(--extender, not --demo)")
    pods = _start_pod_watch(args)
    try:
        scaler, snapshot = _build(args, pods)
    except BaseException:
        if pods is not None:
            pods.stop()
        raise
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    metrics_server = None
    if run_scaler:
        await scaler.server.start()
        scaler.refresher.start()
        if args.metrics_port is not None:
            metrics_server, _ = scaler.metrics.serve(args.host, args.metrics_port)
            state = scaler.refresher.state()
            if state is not None:
                scaler.metrics.observe_state(state, len(scaler.registry))
    extender = None
    if args.extender or args.demo:
        extender = _start_extender(args, scaler.refresher, pods)
    if args.demo and run_scaler:
        _print_demo(snapshot, args, scaler.server.grpc_port, scaler.server.health_port, extender)
    print(f"ready: scaler gRPC on {args.host}:{scaler.server.grpc_port}, health on {args.host}:"
          f"{scaler.server.health_port}" if run_scaler else "ready", flush=True)
    await stop.wait()
    log.info("signal received; stopping")
    if run_scaler:
        await scaler.server.stop(args.grace_s)
    scaler.refresher.stop()
    close_carbon(scaler.refresher.carbon)
    if extender is not None:
        extender.stop(min(args.grace_s, 5.0))
    if pods is not None:
        pods.stop(min(args.grace_s, 5.0))
    if metrics_server is not None:
        metrics_server.shutdown()
    return 0


def _start_extender(args, source, pods=None):
    module = _extender_module()
    if module is None:
        print(f"wattwise serve: the scheduler extender is not in this build ({EXTENDER_MODULE} is missing); "
              "running the scaler only", file=sys.stderr)
        return None
    handle = module.start_extender_from_args(args, source, pods)
    print(f"scheduler extender on port {handle.port}", flush=True)
    return handle


def _print_demo(snapshot, args, grpc_port: int, health_port: int, extender) -> None:
    from wattwise.scaler.sources import demo_metadata

    host = "127.0.0.1" if args.host in ("0.0.0.0", "", "::") else args.host
    address = f"{host}:{grpc_port}"
    out = [f"WattWise demo: scenario {args.scenario}", "",
           "Each bundled workload is selected by this ScaledObject trigger metadata:"]
    for w in sorted(snapshot.workloads, key=lambda w: w.key):
        md = demo_metadata(w)
        out.append(f"\n# {w.key}: ScaledObject {w.name} in namespace {w.namespace}")
        out.append("triggers:\n  - type: external\n    metadata:")
        out.append(f"      scalerAddress: {address}")
        for k, v in md.items():
            out.append(f"      {k}: '{v}'")
        flags = " ".join(f"-m {k}='{v}'" for k, v in md.items())
        out.append(f"# try: wattwise scaler-call --address {address} --namespace {w.namespace} --name {w.name} {flags}")
    out.append(f"\nHealth: grpc.health.v1 on {host}:{health_port} (plaintext)")
    print("\n".join(out), flush=True)
