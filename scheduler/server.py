"""Running the extender: command-line flags, and a server in its own thread and event loop, so
`wattwise serve` can run the KEDA gRPC scaler beside it in the same process."""

from __future__ import annotations

import argparse
import asyncio
import logging
import ssl
import threading
from dataclasses import dataclass, field

from aiohttp import web

from wattwise.kube.cluster import KubeCluster
from wattwise.listen import host_port, ipv6_socket, is_ipv6
from wattwise.models.errors import InvalidInputError, require_positive
from wattwise.runtime import PlanSource
from wattwise.scheduler.app import DEFAULT_MAX_REQUEST_BYTES, build_app, build_health_app
from wattwise.scheduler.deletion_cost import DeletionCostReconciler, kube_patcher
from wattwise.scheduler.metrics import ExtenderMetrics
from wattwise.scheduler.node_cache import KubeNodeCache, NodeCache, PlanSnapshotNodeCache
from wattwise.scheduler.replica_counts import StaticReplicaCounts
from wattwise.scheduler.service import ExtenderService
from wattwise.scheduler.tls import server_ssl_context
from wattwise.tls_files import ReloadingServerContext

log = logging.getLogger(__name__)

DEFAULT_HTTP_PORT = 8888


def add_extender_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of the extender. `--host`, `--demo` and `--scenario` belong to the caller."""
    g = parser.add_argument_group("scheduler extender")
    g.add_argument("--http-port", type=int, default=DEFAULT_HTTP_PORT,
                   help=f"port of the extender's HTTP(S) server (default {DEFAULT_HTTP_PORT}; 0 picks a free one)")
    g.add_argument("--extender-tls-cert", help="PEM server certificate; with --extender-tls-key turns on HTTPS "
                                               "(TLS 1.2+; the files are reloaded when they change, e.g. renewed by "
                                               "cert-manager)")
    g.add_argument("--extender-tls-key", help="PEM private key of --extender-tls-cert")
    g.add_argument("--extender-client-ca", help="PEM CA: require client certificates signed by it (mTLS; reloaded "
                                                "when it changes)")
    g.add_argument("--extender-health-port", type=int, default=None,
                   help="also serve /healthz, /readyz, /metrics over plain HTTP on this port "
                        "(for kubelet probes when client certificates are required)")
    g.add_argument("--kubeconfig", help="kubeconfig for the Kubernetes API (default: $KUBECONFIG or ~/.kube/config)")
    g.add_argument("--in-cluster", action="store_true", help="use the pod's service account for the Kubernetes API")
    g.add_argument("--max-request-bytes", type=int, default=DEFAULT_MAX_REQUEST_BYTES,
                   help=f"largest request body accepted (default {DEFAULT_MAX_REQUEST_BYTES})")
    g.add_argument("--node-resync-s", type=float, default=300.0,
                   help="list each watched resource (nodes, pods, ...) again this often even when its watch is "
                        "healthy (default 300)")
    g.add_argument("--set-deletion-cost", action="store_true",
                   help="keep controller.kubernetes.io/pod-deletion-cost on WattWise's pods as the plan wants "
                        "(scale-down removes pods on nodes over the plan first); needs RBAC `patch` on pods")
    g.add_argument("--deletion-cost-qps", type=float, default=5.0,
                   help="most pod PATCHes per second for --set-deletion-cost (default 5)")


@dataclass
class ExtenderHandle:
    port: int
    host: str
    scheme: str
    service: ExtenderService
    health_port: int | None
    _loop: asyncio.AbstractEventLoop
    _thread: threading.Thread
    _runners: list
    _owned: list = field(default_factory=list)   # watchers started for this server

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "", "::") else self.host
        return f"{self.scheme}://{host_port(host, self.port)}"

    def stop(self, grace_s: float = 5.0) -> None:
        async def shutdown():
            for runner in self._runners:
                await runner.cleanup()

        if self._loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(grace_s + 1.0)
            except Exception:  # noqa: BLE001 - stopping anyway
                log.warning("extender did not shut down cleanly within %.1f s", grace_s, exc_info=True)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(grace_s + 1.0)
        for watcher in self._owned:
            watcher.stop(grace_s)
        log.info("scheduler extender stopped")


def start_extender(source: PlanSource, host: str = "0.0.0.0", port: int = DEFAULT_HTTP_PORT,
                   node_cache: NodeCache | None = None, tls: ReloadingServerContext | ssl.SSLContext | None = None,
                   max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES, health_port: int | None = None,
                   echo: bool = False, replica_counts=None, grace_s: float = 5.0) -> ExtenderHandle:
    """Serve the extender on host:port from a new thread; returns once it listens. `tls`: HTTPS
    (a `ReloadingServerContext` follows its files; a plain `ssl.SSLContext` is served as it is)."""
    if isinstance(tls, ReloadingServerContext):
        tls = tls.context
    if node_cache is None:
        node_cache = PlanSnapshotNodeCache(source)
    service = ExtenderService(source, node_cache, ExtenderMetrics(), replica_counts)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    state: dict = {}

    async def setup():
        runners, ports = [], []
        for app, p, ctx in ((build_app(service, max_request_bytes, echo), port, tls),
                            *(((build_health_app(service), health_port, None),) if health_port is not None else ())):
            runner = web.AppRunner(app, access_log=None, shutdown_timeout=grace_s)
            await runner.setup()
            await _site(runner, host, p, ctx).start()
            runners.append(runner)
            ports.append(runner.addresses[0][1])
        return runners, ports

    def run():
        asyncio.set_event_loop(loop)
        try:
            state["runners"], state["ports"] = loop.run_until_complete(setup())
        except BaseException as e:  # noqa: BLE001 - handed to the starting thread
            state["error"] = e
            started.set()
            return
        started.set()
        loop.run_forever()
        loop.close()

    thread = threading.Thread(target=run, name="wattwise-extender", daemon=True)
    thread.start()
    started.wait()
    if "error" in state:
        raise state["error"]
    scheme = "https" if tls is not None else "http"
    handle = ExtenderHandle(state["ports"][0], host, scheme, service,
                            state["ports"][1] if health_port is not None else None, loop, thread, state["runners"])
    log.info("scheduler extender listening on %s (%s); node cache: %s", handle.url,
             "mTLS" if tls is not None and tls.verify_mode == ssl.CERT_REQUIRED else scheme, node_cache.status())
    return handle


def _site(runner: web.AppRunner, host: str, port: int, ctx: ssl.SSLContext | None) -> web.BaseSite:
    """Where one app listens: an IPv6 literal on its own socket (`::` takes IPv4 clients too, as the
    gRPC ports do; aiohttp would bind it IPv6-only), any other host as aiohttp binds it."""
    if is_ipv6(host):
        return web.SockSite(runner, ipv6_socket(host, port), ssl_context=ctx, backlog=1024)
    return web.TCPSite(runner, host, port, ssl_context=ctx, backlog=1024)


def wants_kube_api(args: argparse.Namespace) -> bool:
    """Whether `wattwise serve` talks to the Kubernetes API: the extender outside the demo, or
    --in-cluster/--kubeconfig given explicitly (the scaler alone then watches the cluster too)."""
    if getattr(args, "demo", False):
        return False
    return bool(getattr(args, "extender", False) or getattr(args, "in_cluster", False)
                or getattr(args, "kubeconfig", None))


def check_extender_args(args: argparse.Namespace) -> ReloadingServerContext | None:
    """Before anything starts (one line naming the flag, nothing started): the extender's flags can
    work. Returns its TLS, the certificate and key loaded (None: plain HTTP)."""
    require_positive(args.node_resync_s, "--node-resync-s", "give seconds between full lists, e.g. 300")
    require_positive(args.max_request_bytes, "--max-request-bytes", f"give bytes, e.g. {DEFAULT_MAX_REQUEST_BYTES}")
    if getattr(args, "set_deletion_cost", False):
        require_positive(args.deletion_cost_qps, "--deletion-cost-qps", "give PATCHes per second, e.g. 5")
        if getattr(args, "demo", False):
            raise InvalidInputError("--set-deletion-cost", "needs the Kubernetes API; the demo has no pods")
    if not (args.extender_tls_cert or args.extender_tls_key):
        if args.extender_client_ca:
            raise InvalidInputError("--extender-client-ca", "checks client certificates over HTTPS",
                                    "give --extender-tls-cert and --extender-tls-key too")
        return None
    if not (args.extender_tls_cert and args.extender_tls_key):
        raise InvalidInputError("--extender-tls-cert/--extender-tls-key", "give both or neither")
    return server_ssl_context(args.extender_tls_cert, args.extender_tls_key, args.extender_client_ca)


def start_extender_from_args(args: argparse.Namespace, source: PlanSource,
                             cluster: KubeCluster | None = None) -> ExtenderHandle:
    """From the flags of `add_extender_arguments` plus the caller's `host` and `demo`. `cluster`:
    the process's watches of the Kubernetes API, which the caller started and stops (without one,
    outside the demo, the extender starts its own and stops it with the server)."""
    tls = check_extender_args(args)
    owned: list = []
    counts = None
    set_cost = getattr(args, "set_deletion_cost", False)
    if getattr(args, "demo", False):
        cache: NodeCache = PlanSnapshotNodeCache(source)
        counts = StaticReplicaCounts({})   # the demo runs no pods: every class the plan wants is short
    else:
        if cluster is None:
            cluster = KubeCluster.connect(args.kubeconfig, args.in_cluster, resync_s=args.node_resync_s).start()
            owned.append(cluster)
        cache = KubeNodeCache(cluster.nodes)
        counts = cluster.workload_pods()
    try:
        handle = start_extender(source, getattr(args, "host", None) or "0.0.0.0", args.http_port, cache, tls,
                                args.max_request_bytes, args.extender_health_port, replica_counts=counts)
        if set_cost:
            assert cluster is not None and counts is not None
            reconciler = DeletionCostReconciler(source, counts, kube_patcher(cluster.api_client),
                                                handle.service.metrics, max_patches_per_s=args.deletion_cost_qps)
            owned.insert(0, reconciler.start())   # stopped first
            log.info("pod-deletion-cost reconciler on (at most %.1f PATCH/s)", args.deletion_cost_qps)
    except BaseException:
        for watcher in owned:
            watcher.stop()
        raise
    handle._owned = owned
    return handle
