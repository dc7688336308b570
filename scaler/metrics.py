"""The scaler's own Prometheus metrics (served on --metrics-port: plain HTTP, or HTTPS with
--metrics-tls).

Names follow Prometheus conventions: base units in the name (seconds, watts), `_total` only on
counters. Gauges about the plan are set from the refresher after each swap, so a scrape never
triggers work.
"""

from __future__ import annotations

import logging
import socket
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app, start_http_server

from wattwise.scaler.state import ScalerState
from wattwise.tls_files import ReloadingServerContext

log = logging.getLogger(__name__)

RPC_BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class ScalerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.rpc_duration = Histogram("wattwise_scaler_rpc_duration_seconds", "Time to answer a KEDA RPC",
                                      ["method", "code"], buckets=RPC_BUCKETS_S, registry=r)
        self.invalid_metadata = Counter("wattwise_scaler_invalid_metadata_total",
                                        "Calls refused for invalid scalerMetadata", ["key"], registry=r)
        self.replicas = Gauge("wattwise_planned_replicas", "Replicas the plan wants (asked of KEDA, with those "
                              "waiting for a node)", ["workload", "objective"], registry=r)
        self.unplaced = Gauge("wattwise_unplaced_replicas", "Replicas the plan wants that no node has room for: "
                              "they wait Pending for a node autoscaler", ["workload"], registry=r)
        self.power = Gauge("wattwise_predicted_power_watts", "Predicted power of the workload's replicas",
                           ["workload"], registry=r)
        self.cluster_power = Gauge("wattwise_predicted_cluster_power_watts",
                                   "Predicted power of all nodes under the plan", registry=r)
        self.carbon = Gauge("wattwise_predicted_carbon_grams_per_hour",
                            "Predicted emissions of the workload's replicas", ["workload"], registry=r)
        self.cluster_carbon = Gauge("wattwise_predicted_cluster_carbon_grams_per_hour",
                                    "Predicted emissions of all nodes under the plan", registry=r)
        self.staleness = Gauge("wattwise_telemetry_staleness_seconds",
                               "Age of the workload's last trustworthy demand reading", ["workload"], registry=r)
        self.held = Gauge("wattwise_demand_held", "1 when the workload's replicas are held for lack of "
                          "trustworthy telemetry", ["workload"], registry=r)
        self.degraded = Gauge("wattwise_degraded", "1 when any input is missing, stale or absurd", registry=r)
        self.plan_time = Gauge("wattwise_plan_timestamp_seconds", "Plan time of the current plan (Unix time)",
                               registry=r)
        self.registered = Gauge("wattwise_scaler_registered_workloads", "Workloads KEDA asks about", registry=r)
        self.answers = Counter("wattwise_scaler_metric_answers_total",
                               "GetMetrics answers by basis: rollout (plan + make-before-break surge, from "
                               "running/ready pods) or plan (the plan's replicas: pods unknown, or no surge "
                               "without deletion costs or for a StatefulSet)", ["basis"], registry=r)
        self.surge = Gauge("wattwise_scaler_surge_replicas", "Replicas asked for above the plan while planned "
                           "pods are not ready (make before break), as of the last GetMetrics", ["workload"],
                           registry=r)

    def observe_state(self, state: ScalerState, registered: int) -> None:
        self.replicas.clear()
        self.unplaced.clear()
        self.power.clear()
        self.carbon.clear()
        self.held.clear()
        self.staleness.clear()
        for objective, view in state.views.items():
            for key, wp in view.plan.workloads.items():
                self.replicas.labels(key, objective.kind).set(wp.asked_replicas)
        view = state.default_view
        for key, wp in view.plan.workloads.items():
            self.unplaced.labels(key).set(wp.unplaced_replicas)
            self.power.labels(key).set(wp.power_w)
            self.carbon.labels(key).set(wp.carbon_g_per_h)
            self.held.labels(key).set(1 if wp.held else 0)
        for key, age in state.staleness_s.items():
            self.staleness.labels(key).set(age)
        self.cluster_power.set(view.plan.power_w)
        self.cluster_carbon.set(view.plan.carbon_g_per_h)
        self.degraded.set(1 if state.degraded else 0)
        self.plan_time.set(state.now_s)
        self.registered.set(registered)

    def serve(self, host: str, port: int, tls: ReloadingServerContext | None = None):
        """Start the /metrics endpoint, HTTP or (with `tls`) HTTPS; returns (server, thread)."""
        if tls is None:
            server, thread = start_http_server(port, addr=host, registry=self.registry)
            log.info("metrics on http://%s:%s/metrics", host, server.server_port)
            return server, thread
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        server_class = type("HttpsMetricsServer", (_HttpsServer,), {"address_family": family, "tls": tls})
        server = make_server(address[0], port, make_wsgi_app(self.registry), server_class, handler_class=_QuietHandler)
        thread = threading.Thread(target=server.serve_forever, name="wattwise-metrics", daemon=True)
        thread.start()
        log.info("metrics on https://%s:%s/metrics (%s, TLS 1.2+)", host, server.server_port,
                 "client certificates required" if tls.files.mutual else "no client certificate asked for")
        return server, thread


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        """No line per scrape."""


class _HttpsServer(ThreadingMixIn, WSGIServer):
    """HTTPS with the TLS handshake on each connection's own thread (a client that stalls its
    handshake holds only its thread, for at most HANDSHAKE_TIMEOUT_S), not on the accept loop as
    wrapping the listening socket would."""

    daemon_threads = True
    tls: ReloadingServerContext
    HANDSHAKE_TIMEOUT_S = 10.0

    def finish_request(self, request, client_address):
        request.settimeout(self.HANDSHAKE_TIMEOUT_S)
        try:
            conn = self.tls.context.wrap_socket(request, server_side=True)
        except OSError as e:     # refused (no client certificate, TLS 1.1, ...) or gone
            log.debug("metrics: TLS handshake with %s failed: %s", client_address[0],
                      getattr(e, "reason", None) or type(e).__name__)
            return
        try:
            self.RequestHandlerClass(conn, client_address, self)
        finally:
            conn.close()

    def handle_error(self, request, client_address):
        log.debug("metrics: connection from %s failed", client_address[0], exc_info=True)
