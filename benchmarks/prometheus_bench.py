"""Prometheus requests and bytes for a 7-day fit of a 100-node cluster.

Requests come from the query plan (exact). Bytes are measured on a real Prometheus (Debian's
`prometheus`, started on 127.0.0.1 by the test fixture) loaded with a small synthetic cluster:
bytes per returned point of each range query and per series of each identity query, medians of
--repeat runs, then scaled to the cluster size given on the command line.

    .venv/bin/python benchmarks/prometheus_bench.py [--nodes 100 --pods-per-node 30 --inference-pods-per-node 10 --days 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.prometheus_fixture import start_prometheus  # noqa: E402
from tests.telemetry.synthetic import Faults, generate  # noqa: E402
from wattwise.telemetry.prometheus import PrometheusClient, PrometheusPowerFpsSource, promql  # noqa: E402
from wattwise.telemetry.prometheus.client import MAX_POINTS_PER_QUERY, plan_chunks  # noqa: E402
from wattwise.telemetry.prometheus.schema import KeplerSchema  # noqa: E402


def measure(url: str, start_s: float, end_s: float, step_s: float) -> dict[str, float]:
    """Bytes per point (range queries) or per series (instant identity queries)."""
    schema, window = KeplerSchema.V0_10, promql.rate_window_s(15, step_s)
    span = end_s - start_s
    ranges = {"pod_power": promql.pod_power_w(schema, window, only_pods_of=("infer_fps", "namespace", "pod")), "node_power": promql.node_power_w(schema, window),
              "fps": promql.pod_fps("infer_fps", window), "drop": promql.pod_fps("drop_fps", window)}
    instants = {"resets": promql.pod_counter_resets(schema, span), "kube_pod_info": promql.pod_info(span),
                "kube_pod_labels": promql.pod_labels("app.kubernetes.io/name", span),
                "kube_node_labels": promql.node_labels(span)}
    out = {}
    with PrometheusClient(url) as client:
        for name, q in ranges.items():
            before = client.stats.bytes_received
            series = client.range(q, start_s, end_s, step_s)
            out[name] = (client.stats.bytes_received - before) / sum(len(s.t_s) for s in series)
        for name, q in instants.items():
            before = client.stats.bytes_received
            series = client.instant(q, end_s)
            out[name] = (client.stats.bytes_received - before) / max(1, len(series))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--pods-per-node", type=int, default=30, help="pods Kepler reports per node (all namespaces); "
                    "only inference pods are fetched, the others are filtered out in Prometheus")
    ap.add_argument("--inference-pods-per-node", type=int, default=10)
    ap.add_argument("--days", type=float, default=7)
    ap.add_argument("--step-s", type=float, default=15)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    end_s = (time.time() - 3600) // 15 * 15
    text, cluster = generate("0.10", end_s - 6 * 3600, 6 * 3600, Faults())
    with tempfile.TemporaryDirectory() as tmp:
        prom = start_prometheus(text, Path(tmp))
        try:
            runs = [measure(prom.url, cluster.start_s, cluster.end_s, args.step_s) for _ in range(args.repeat)]
            with PrometheusClient(prom.url) as client:
                t0 = time.perf_counter()
                PrometheusPowerFpsSource(client).samples(cluster.start_s, cluster.end_s, args.step_s)
                small = (client.stats.requests, client.stats.bytes_received, time.perf_counter() - t0)
        finally:
            prom.stop()
    per = {k: statistics.median(r[k] for r in runs) for k in runs[0]}

    points = int(args.days * 86400 // args.step_s) + 1
    chunks = len(plan_chunks(0, args.days * 86400, args.step_s, MAX_POINTS_PER_QUERY))
    pods, inference = args.nodes * args.pods_per_node, args.nodes * args.inference_pods_per_node
    series = {"pod_power": inference, "node_power": args.nodes, "fps": inference, "drop": inference}
    range_bytes = sum(series[k] * points * per[k] for k in series)
    identity = {"resets": pods, "kube_pod_info": pods, "kube_pod_labels": inference, "kube_node_labels": args.nodes}
    identity_bytes = chunks * sum(identity[k] * per[k] for k in identity)
    requests = 1 + chunks * (len(series) + len(identity))
    print(f"measured on a 6 h, 4-node synthetic cluster: {small[0]} requests, {small[1] / 1e6:.2f} MB, {small[2]:.2f} s")
    print("bytes per point (range): " + ", ".join(f"{k} {per[k]:.1f}" for k in series))
    print("bytes per series (identity, instant): " + ", ".join(f"{k} {per[k]:.0f}" for k in identity))
    print(f"7-day fit of {args.nodes} nodes ({pods} pods seen by Kepler, {inference} inference pods), "
          f"{args.step_s:g} s step: {requests} requests ({chunks} chunks of <= {MAX_POINTS_PER_QUERY} points), "
          f"~{(range_bytes + identity_bytes) / 1e9:.2f} GB ({range_bytes / 1e9:.2f} GB range data, "
          f"{identity_bytes / 1e6:.1f} MB identity)")


if __name__ == "__main__":
    main()
