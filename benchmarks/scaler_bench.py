"""GetMetrics latency with 1,000 ScaledObjects registered, side by side with the health Check on
the same server (same port, same process, same run), calls interleaved from one client.

    .venv/bin/python benchmarks/scaler_bench.py            # 5 runs x 2,000 calls of each
    .venv/bin/python benchmarks/scaler_bench.py --refresh-s 1e9      # no re-plan during the runs
    .venv/bin/python benchmarks/scaler_bench.py --plan-inline        # plan on the server's thread

Prints p50/p99 per run and the medians over runs; target: GetMetrics p99 <= 2 ms and
<= 1.5x the health check's p99. By default the server is `wattwise serve --scaler` in its own
process (as in service: KEDA is another process), with its refresher re-planning the 1,000
workloads every --refresh-s in its planner worker process (`--plan-inline`: on a thread of the
server, as before the worker existed); `--in-process` runs it on a thread of this process instead (client
and server then share one GIL, which inflates both tails alike).
"""

from __future__ import annotations

import argparse
import logging
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wattwise.models.scenario import load_scenario  # noqa: E402
from wattwise.scaler.app import ThreadedScaler, build_scaler, settings_from_snapshot  # noqa: E402
from wattwise.scaler.demand import RecordedDemand  # noqa: E402
from wattwise.scaler.planning import InlinePlanner, ProcessPlanner  # noqa: E402
from wattwise.scaler.proto import externalscaler_pb2 as pb  # noqa: E402
from wattwise.scaler.proto import externalscaler_pb2_grpc as pb_grpc  # noqa: E402
from wattwise.scaler.server import ServerConfig  # noqa: E402
from wattwise.scaler.sources import ScenarioCarbon, ScenarioInventory, catalogue  # noqa: E402

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "metro-retail.yaml"


def percentile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


def scaled_objects(n: int, recorded: bool):
    """n distinct ScaledObjects; with `recorded`, demand by query (answered from a recording),
    else by stream count (no Prometheus needed by the subprocess)."""
    refs = []
    series = {}
    for i in range(n):
        query = f'sum(wattwise_active_streams{{namespace="bench",workload="cams-{i:04d}"}})'
        series[query] = [(0.0, float(i % 7))]
        md = {"workload": f"cams-{i:04d}", "fpsPerStream": "5", "cpu": "500m", "memory": "512Mi",
              "maxReplicas": "20", "scalerAddress": "wattwise-scaler:6000"}
        md.update({"query": query} if recorded else {"streams": str(i % 7)})
        if i % 3 == 0:
            md["tee"] = "tdx,sev-snp"
        refs.append(pb.ScaledObjectRef(name=f"cams-{i:04d}", namespace="bench", scalerMetadata=md))
    return refs, RecordedDemand(series)


def start_subprocess(refresh_s: float, plan_inline: bool):
    proc = subprocess.Popen([sys.executable, "-m", "wattwise", "--log-level", "WARNING", "serve", "--scaler",
                             "--host", "127.0.0.1", "--grpc-port", "0", "--health-port", "0",
                             "--refresh-s", str(refresh_s)] + (["--plan-inline"] if plan_inline else []),
                            stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[1])
    for line in proc.stdout:
        m = re.match(r"ready: scaler gRPC on 127\.0\.0\.1:(\d+)", line)
        if m:
            return proc, int(m.group(1))
    raise SystemExit(f"the scaler did not start (exit {proc.wait()})")


def wait_planned(stub, requests, timeout_s=120.0):
    deadline = time.monotonic() + timeout_s
    for r in requests:
        while True:
            try:
                stub.GetMetrics(r)
                break
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--scaled-objects", type=int, default=1000)
    p.add_argument("--calls", type=int, default=2000, help="calls of each kind per run")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--refresh-s", type=float, default=15.0)
    p.add_argument("--in-process", action="store_true", help="run the server on a thread of this process")
    p.add_argument("--plan-inline", action="store_true",
                   help="plan on a thread of the server instead of its worker process")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    refs, demand = scaled_objects(args.scaled_objects, recorded=args.in_process)
    proc = running = None
    if args.in_process:
        snap = load_scenario(SCENARIO).snapshot
        scaler = build_scaler(inventory=ScenarioInventory(snap), demand=demand, carbon=ScenarioCarbon(snap),
                              catalogue_by_key=catalogue(snap), settings=settings_from_snapshot(snap, args.refresh_s),
                              config=ServerConfig(host="127.0.0.1", grpc_port=0, health_port=0),
                              planner=InlinePlanner() if args.plan_inline else ProcessPlanner())
        running = ThreadedScaler(scaler)
        port = running.grpc_port
    else:
        proc, port = start_subprocess(args.refresh_s, args.plan_inline)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    stub = pb_grpc.ExternalScalerStub(channel)
    health = health_pb2_grpc.HealthStub(channel)
    t0 = time.perf_counter()
    for r in refs:                                   # KEDA registers each ScaledObject via GetMetricSpec
        stub.GetMetricSpec(r)
    requests = [pb.GetMetricsRequest(scaledObjectRef=r, metricName=f"wattwise-bench-{r.name}") for r in refs]
    wait_planned(stub, requests)                     # every one answers (planned); also a warm-up
    plan_s = time.perf_counter() - t0
    check = health_pb2.HealthCheckRequest(service="")
    print(f"{args.scaled_objects} ScaledObjects registered and planned in {plan_s:.1f} s; server "
          f"{'in this process' if args.in_process else 'in its own process'}, re-planning every {args.refresh_s:g} s "
          f"({'on a server thread' if args.plan_inline else 'in a worker process'}); "
          f"{args.runs} runs x {args.calls} calls of each, interleaved")
    rows = []
    for run in range(args.runs):
        gm, hc = [], []
        for i in range(args.calls):
            a = time.perf_counter()
            stub.GetMetrics(requests[i % len(requests)])
            b = time.perf_counter()
            health.Check(check)
            c = time.perf_counter()
            gm.append(b - a)
            hc.append(c - b)
        row = tuple(1000 * x for x in (percentile(gm, 50), percentile(gm, 99), percentile(hc, 50), percentile(hc, 99)))
        rows.append(row)
        print(f"run {run + 1}: GetMetrics p50 {row[0]:.3f} ms p99 {row[1]:.3f} ms | "
              f"health Check p50 {row[2]:.3f} ms p99 {row[3]:.3f} ms | p99 ratio {row[1] / row[3]:.2f}")
    med = [statistics.median(r[k] for r in rows) for k in range(4)]
    ratio = statistics.median(r[1] / r[3] for r in rows)
    ok = med[1] <= 2.0 and ratio <= 1.5
    print(f"median over runs: GetMetrics p50 {med[0]:.3f} ms p99 {med[1]:.3f} ms | health Check p50 {med[2]:.3f} ms "
          f"p99 {med[3]:.3f} ms | p99 ratio {ratio:.2f} -> target (p99 <= 2 ms, ratio <= 1.5) "
          f"{'met' if ok else 'NOT met'}")
    channel.close()
    if running is not None:
        running.stop(1.0)
    if proc is not None:
        proc.terminate()
        proc.wait(30)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
