"""Prometheus metrics of the extender: latency per verb, decisions and reasons counted.

Each server gets its own registry (tests and the demo may run several in one process). Decisions
and reasons are counted per call into a plain dict and added to their counters when /metrics is
scraped (`flush`): a call may count under several labels, and prometheus_client's counters cost
microseconds each, which at thousands of candidate nodes is a share of the extender's answer.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Extender calls are expected in the sub-millisecond to tens-of-milliseconds range.
LATENCY_BUCKETS_S = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ExtenderMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.latency = Histogram("wattwise_extender_request_duration_seconds",
                                 "Time to answer one extender call, by verb and HTTP status",
                                 ["verb", "code"], buckets=LATENCY_BUCKETS_S, registry=r)
        self.decisions = Counter("wattwise_extender_node_decisions_total",
                                 "Per-node outcomes, by verb and pod kind:outcome",
                                 ["verb", "decision"], registry=r)
        self.reasons = Counter("wattwise_extender_filter_reasons_total",
                               "Nodes filtered out, by kind of reason", ["reason"], registry=r)
        self.bad_requests = Counter("wattwise_extender_bad_requests_total",
                                    "Requests refused with HTTP 4xx, by verb", ["verb"], registry=r)
        self.cache_nodes = Gauge("wattwise_extender_node_cache_nodes", "Nodes in the node cache", registry=r)
        self.cache_age_s = Gauge("wattwise_extender_node_cache_sync_age_seconds",
                                 "Seconds since the node cache last heard from the API server", registry=r)
        self.deletion_cost_patches = Counter("wattwise_extender_deletion_cost_patches_total",
                                             "Pods whose pod-deletion-cost annotation was PATCHed", registry=r)
        self.deletion_cost_errors = Counter("wattwise_extender_deletion_cost_patch_errors_total",
                                            "Failed pod-deletion-cost PATCHes, by HTTP status (or 'error')",
                                            ["code"], registry=r)

        self._children: dict[tuple, object] = {}   # labelled counters by labels (labels() is slow per call)
        self._pending: dict[tuple, int] = {}        # (counter, *labels) -> counted since the last flush

    def count_decisions(self, verb: str, decision: str, n: int) -> None:
        self._count(n, self.decisions, verb, decision)

    def count_reason(self, category: str, n: int) -> None:
        self._count(n, self.reasons, category)

    def _count(self, n: int, *key) -> None:
        """Adds n to `key` (counter, *labels) at the next flush."""
        if n:
            self._pending[key] = self._pending.get(key, 0) + n

    def observe_latency(self, verb: str, code: int, seconds: float) -> None:
        self._child(self.latency, verb, str(code)).observe(seconds)

    def flush(self) -> None:
        """Adds what was counted since the last flush to the counters (before every scrape). Counting
        and flushing happen on the server's event loop, so no count falls between the two."""
        pending, self._pending = self._pending, {}
        for (metric, *labels), n in pending.items():
            self._child(metric, *labels).inc(n)

    def _child(self, metric, *labels: str):
        key = (metric, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

