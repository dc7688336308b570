"""The scaler's own Prometheus metrics (served on --metrics-port).

Names follow Prometheus conventions: base units in the name (seconds, watts), `_total` only on
counters. Gauges about the plan are set from the refresher after each swap, so a scrape never
triggers work.
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from wattwise.scaler.state import ScalerState

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
        self.replicas = Gauge("wattwise_planned_replicas", "Replicas the plan wants", ["workload", "objective"],
                              registry=r)
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
                               "running/ready pods) or plan (pods unknown: the plan's replicas)", ["basis"], registry=r)
        self.surge = Gauge("wattwise_scaler_surge_replicas", "Replicas asked for above the plan while planned "
                           "pods are not ready (make before break), as of the last GetMetrics", ["workload"],
                           registry=r)

    def observe_state(self, state: ScalerState, registered: int) -> None:
        self.replicas.clear()
        self.power.clear()
        self.carbon.clear()
        self.held.clear()
        self.staleness.clear()
        for objective, view in state.views.items():
            for key, wp in view.plan.workloads.items():
                self.replicas.labels(key, objective.kind).set(wp.replicas)
        view = state.default_view
        for key, wp in view.plan.workloads.items():
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

    def serve(self, host: str, port: int):
        """Start the /metrics HTTP endpoint; returns (server, thread)."""
        server, thread = start_http_server(port, addr=host, registry=self.registry)
        log.info("metrics on http://%s:%s/metrics", host, server.server_port)
        return server, thread
