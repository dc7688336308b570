"""Load on both doors at once (issue 15): 1,000 ScaledObjects polled at KEDA's cadence over gRPC
plus 300 extender calls per second over HTTP, for 10 minutes, against `wattwise serve --scaler
--extender --kubeconfig ...` in its own process, planning the cluster the fake Kubernetes API
(tests/kube_fake.py) serves.

    .venv/bin/python benchmarks/load_bench.py                       # 10 minutes
    .venv/bin/python benchmarks/load_bench.py --duration-s 30       # a smoke run
    nohup .venv/bin/python benchmarks/load_bench.py > /tmp/load_bench.txt 2>&1 &

The cluster: --nodes nodes and --scaled-objects ScaledObjects (an `external` trigger naming the
scaler's Service, `streams` metadata) with their Deployments, derived from the recorded objects as
benchmarks/live_loop_bench.py derives them (`make_nodes`, `make_workloads`), no pods.

KEDA's side (kedacore/keda `pkg/scaling/scale_handler.go`, `pkg/scalers/external_scaler.go`): each
ScaledObject is read once per pollingInterval (30 s) by the scale loop and once per HPA sync (15 s)
by the metrics adapter, and each read is GetMetricSpec, then GetMetrics with the metric name it
returned, then IsActive, one after the other (a failed call ends the read, as in KEDA). So 3 reads
per ScaledObject per 30 s: at 1,000 ScaledObjects 100 reads, 300 RPCs a second. The reads are
spread evenly over the intervals and sent on time whatever the earlier ones are doing (each
ScaledObject is its own goroutine in KEDA), over --channels grpc.aio channels (KEDA: one pooled
connection per scaler address), with a --timeout-s deadline (KEDA sets none; a call that hangs
counts as DEADLINE_EXCEEDED here rather than stalling the generator).

kube-scheduler's side: for each pod, POST /filter with the pod and --node-names candidate names
(nodeCacheCapable: true; at 200 nodes kube-scheduler stops at 100 feasible nodes, its minimum of
nodes to find), then POST /prioritize with the names the filter kept, unless it kept at most one
(then kube-scheduler does not call prioritize). The pods are copies of the pending checkout-cams
pod of tests/data/kube/pods.json, one per workload (its labels, runtime class, requests); each pod
is a replica of a workload drawn at random (--pod-mix random), of each in turn (cycle: the
extender's placement memo, which keeps tables of node answers per workload for the current plan,
then never finds the table it needs once they do not all fit) or of one workload (one: always
found); each pod gets one of 64 random samples of names. Calls are paced at --extender-rps in
total: a filter takes the next slot, and its prioritize the slot after, so the ratio is the real
one. Pods start on time whatever the earlier ones are doing, at most --max-inflight at once: beyond
that the generator waits (it reports how often and how late pods started; slots still due at the
end are not sent), over HTTP keep-alive (aiohttp), with kube-scheduler's
default 5 s httpTimeout. Unlike kube-scheduler, which schedules one pod at a time, pods may
overlap: the offered load does not slow down when the server does.

Printed: every --report-s, the serve process's VmRSS (and its planner worker's) and the minute's
calls and p99 per RPC and verb; at the end, per RPC and verb: calls, errors by code or status,
p50/p99/max latency as the client saw it (sent to whole reply read, client-side queueing
included), the server's own p99 from its histograms (bucket upper bound: the handler's time
only), the achieved rate against the target and how late the generator started calls; VmRSS at
start (load about to begin, first plan made) and end, and VmHWM. The client and the server share
the machine: on 2 cores the client's own event loop is part of every latency it records.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import heapq
import math
import os
import random
import re
import socket
import sys
import tempfile
import time
import urllib.request
from array import array
from collections import Counter, defaultdict
from pathlib import Path

import aiohttp
import grpc
import orjson
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.live_loop_bench import MANAGED_LABEL, make_nodes, make_workloads  # noqa: E402
from tests.kube_fake import FakeKubeApi, recorded_list  # noqa: E402
from tests.live.serve_proc import serve, write_kubeconfig  # noqa: E402
from wattwise.scaler.proto import externalscaler_pb2 as pb  # noqa: E402
from wattwise.scaler.proto import externalscaler_pb2_grpc as pb_grpc  # noqa: E402

RPCS = ("GetMetricSpec", "GetMetrics", "IsActive")
VERBS = ("filter", "prioritize")


# -- what was seen ----------------------------------------------------------------------------------

class Tally:
    """Latencies (s) and errors per RPC or verb, for the whole run and for the current window."""

    def __init__(self):
        self.latency = defaultdict(lambda: array("d"))
        self.errors: dict[str, Counter] = defaultdict(Counter)
        self.window = defaultdict(lambda: array("d"))

        self.done_after = Counter()     # calls that ended after the run's end (drained)
        self.end = math.inf

    def ok(self, name: str, seconds: float) -> None:
        self.latency[name].append(seconds)
        self.window[name].append(seconds)
        if time.perf_counter() > self.end:
            self.done_after[name] += 1

    def error(self, name: str, code: str, seconds: float) -> None:
        self.errors[name][code] += 1
        self.ok(name, seconds)

    def take_window(self) -> dict:
        window, self.window = self.window, defaultdict(lambda: array("d"))
        return window


def quantile(values, q: float) -> float:
    """The q-quantile of sorted `values` (nearest rank)."""
    if not values:
        return float("nan")
    return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]


def ms(seconds: float) -> str:
    return "-" if seconds != seconds else f"{seconds * 1000:.1f}"


# -- the serve process -------------------------------------------------------------------------------

def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in KiB (empty when it is gone)."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (its threads included, its children not)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    kids = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            pass
    return kids


def rss_mib(pid: int) -> tuple[float, float]:
    """VmRSS of the serve process and of its children (the planner worker), MiB."""
    own = proc_status(pid).get("VmRSS", 0)
    kids = sum(proc_status(k).get("VmRSS", 0) for k in children(pid))
    return own / 1024, kids / 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(url: str) -> dict:
    """Histogram buckets, counts and the plan timestamp from a Prometheus text page:
    {("bucket", metric, label-key, le): value, ...}."""
    with urllib.request.urlopen(url, timeout=30) as resp:
        text = resp.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        if family.name == "wattwise_plan_timestamp_seconds":
            out["plan_time"] = family.samples[0].value
        if family.name not in ("wattwise_scaler_rpc_duration_seconds", "wattwise_extender_request_duration_seconds"):
            continue
        for s in family.samples:
            name = s.labels.get("method") or s.labels.get("verb")
            if s.name.endswith("_bucket"):
                out[("bucket", name, s.labels["code"], float(s.labels["le"]))] = s.value
    return out


PLAN_TIME = re.compile(rb"^wattwise_plan_timestamp_seconds ([0-9.e+-]+)$", re.M)


def scrape_plan_time(url: str) -> float | None:
    """The plan timestamp alone, found with a regular expression: parsing the whole page (a few
    series per workload) takes this client's GIL for a tenth of a second or more, a stall of
    every call it is timing."""
    with urllib.request.urlopen(url, timeout=30) as resp:
        m = PLAN_TIME.search(resp.read())
    return float(m.group(1)) if m else None


def server_view(before: dict, after: dict) -> dict[str, tuple[dict[str, int], float]]:
    """Per RPC or verb: calls by code and the p99 bucket's upper bound (s), over the run."""
    buckets = defaultdict(lambda: defaultdict(float))
    for key, value in after.items():
        if isinstance(key, tuple):
            _, name, code, le = key
            buckets[(name, code)][le] += value - before.get(key, 0.0)
    out = {}
    for name in {n for n, _ in buckets}:
        codes = {code: int(b[math.inf]) for (n, code), b in buckets.items() if n == name and b[math.inf]}
        merged = defaultdict(float)
        for (n, _), b in buckets.items():
            if n == name:
                for le, v in b.items():
                    merged[le] += v
        total = merged[math.inf]
        p99 = next((le for le in sorted(merged) if total and merged[le] >= 0.99 * total), float("nan"))
        out[name] = (codes, p99)
    return out


# -- the cluster --------------------------------------------------------------------------------------

def cluster(args, rng: random.Random) -> tuple[FakeKubeApi, list[dict], list[str]]:
    nodes = make_nodes(args.nodes, rng)
    scaled_objects, deployments, workloads = make_workloads(args.scaled_objects, rng)
    for so, w in zip(scaled_objects, workloads):
        w["metadata"] = dict(so["spec"]["triggers"][0]["metadata"])
    lists = {"nodes": nodes, "scaledobjects": scaled_objects, "deployments": deployments, "pods": []}
    api = FakeKubeApi(lists={**{k: {"metadata": {"resourceVersion": "1"}, "items": v} for k, v in lists.items()},
                             "runtimeclasses": recorded_list("runtimeclasses"),
                             "statefulsets": recorded_list("statefulsets")})
    return api, workloads, [n["metadata"]["name"] for n in nodes]


def pending_pod(template: dict, w: dict, serial: int) -> bytes:
    """The recorded pending checkout-cams pod as a replica of workload `w`, compact JSON."""
    pod = copy.deepcopy(template)
    meta, spec = pod["metadata"], pod["spec"]
    meta.update(name=f"{w['name']}-7c9d8f6b4-{serial:05x}", namespace=w["namespace"], generateName=f"{w['name']}-7c9d8f6b4-",
                uid=f"e5c8{serial:04x}-3f1b-4e9c-a6d0-{serial:012x}",
                labels={"app": w["name"], "pod-template-hash": "7c9d8f6b4", MANAGED_LABEL: w["name"]})
    meta["ownerReferences"][0]["name"] = f"{w['name']}-7c9d8f6b4"
    res = {"cpu": w["cpu"], "memory": w["memory"]}
    if w["gpu"]:
        res["nvidia.com/gpu"] = "1"
        spec["tolerations"].append({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"})
    spec["containers"][0]["resources"] = {"requests": dict(res), "limits": dict(res)}
    if w["runtime"]:
        spec["runtimeClassName"] = w["runtime"]
    else:
        spec.pop("runtimeClassName", None)
        spec.pop("overhead", None)
    return orjson.dumps(pod)


# -- the load -----------------------------------------------------------------------------------------

class Load:
    def __init__(self, args, served, workloads: list[dict], node_names: list[str], rng: random.Random):
        self.args = args
        self.served = served
        self.rng = rng
        self.tally = Tally()
        self.refs = [pb.ScaledObjectRef(name=w["name"], namespace=w["namespace"], scalerMetadata=w["metadata"])
                     for w in workloads]
        template = next(p for p in recorded_list("pods")["items"]
                        if p["metadata"]["name"] == "checkout-cams-7c9d8f6b4-9wz4t")
        self.pods = [pending_pod(template, w, i) for i, w in enumerate(workloads)]
        k = min(args.node_names, len(node_names))
        self.samples = [orjson.dumps(rng.sample(node_names, k)) for _ in range(64)]
        self.keda_late = array("d")       # how late each read started (s)
        self.pods_late = array("d")
        self.reads = 0
        self.pods_started = 0
        self.inflight_waits = 0
        self.filter_kept = Counter()      # "0", "1", ">1" names kept by the filter
        self._next_slot = 0.0

    # KEDA: GetMetricSpec, GetMetrics, IsActive; a failed call ends the read
    async def _call(self, name: str, method, request):
        t0 = time.perf_counter()
        try:
            reply = await method(request, timeout=self.args.timeout_s)
        except grpc.aio.AioRpcError as e:
            self.tally.error(name, e.code().name, time.perf_counter() - t0)
            return None
        except Exception as e:  # noqa: BLE001 - counted, the load goes on
            self.tally.error(name, type(e).__name__, time.perf_counter() - t0)
            return None
        self.tally.ok(name, time.perf_counter() - t0)
        return reply

    async def keda_read(self, stub, ref) -> None:
        spec = await self._call("GetMetricSpec", stub.GetMetricSpec, ref)
        if spec is None or not spec.metricSpecs:
            return
        got = await self._call("GetMetrics", stub.GetMetrics,
                               pb.GetMetricsRequest(scaledObjectRef=ref, metricName=spec.metricSpecs[0].metricName))
        if got is None:
            return
        await self._call("IsActive", stub.IsActive, ref)

    async def keda(self, t0: float, end: float, channels: list) -> None:
        stubs = [pb_grpc.ExternalScalerStub(c) for c in channels]
        n = len(self.refs)
        # (due, period, ScaledObject index): the HPA sync of each and its scale loop, evenly spread
        schedule = [(t0 + i * self.args.hpa_sync_s / n, self.args.hpa_sync_s, i) for i in range(n)]
        schedule += [(t0 + (i + 0.5) * self.args.polling_interval_s / n, self.args.polling_interval_s, i)
                     for i in range(n)]
        heapq.heapify(schedule)
        tasks = set()
        loop = asyncio.get_running_loop()
        while True:
            due, period, i = schedule[0]
            if due >= end:
                break
            now = loop.time()
            if due > now:
                await asyncio.sleep(due - now)
                continue
            heapq.heapreplace(schedule, (due + period, period, i))
            self.keda_late.append(now - due)
            self.reads += 1
            task = asyncio.create_task(self.keda_read(stubs[i % len(stubs)], self.refs[i]))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks)

    # kube-scheduler: filter, then prioritize with the names it kept (if more than one)
    async def _post(self, session, verb: str, body: bytes):
        t0 = time.perf_counter()
        try:
            async with session.post(f"{self.base}/{verb}", data=body,
                                    headers={"Content-Type": "application/json"}) as resp:
                raw = await resp.read()
                status = resp.status
        except asyncio.TimeoutError:
            self.tally.error(verb, "timeout", time.perf_counter() - t0)
            return None
        except Exception as e:  # noqa: BLE001 - counted, the load goes on
            self.tally.error(verb, type(e).__name__, time.perf_counter() - t0)
            return None
        dt = time.perf_counter() - t0
        if status != 200:
            self.tally.error(verb, f"HTTP {status}", dt)
            return None
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self.tally.error(verb, "not JSON", dt)
            return None
        if isinstance(doc, dict) and doc.get("Error"):
            self.tally.error(verb, f"Error: {str(doc['Error'])[:60]}", dt)
            return None
        self.tally.ok(verb, dt)
        return doc

    def pod_of(self, k: int) -> bytes:
        """The k-th pod to schedule: a replica of a workload picked as --pod-mix says."""
        mix = self.args.pod_mix
        if mix == "one":
            return self.pods[0]
        if mix == "cycle":
            return self.pods[k % len(self.pods)]
        return self.pods[self.rng.randrange(len(self.pods))]

    async def schedule_pod(self, session, k: int, slot_s: float) -> None:
        pod = self.pod_of(k)
        names = self.samples[k % len(self.samples)]
        doc = await self._post(session, "filter", b'{"Pod":' + pod + b',"Nodes":null,"NodeNames":' + names + b"}")
        if doc is None:
            return
        kept = doc.get("NodeNames") or []
        self.filter_kept["0" if not kept else "1" if len(kept) == 1 else ">1"] += 1
        if len(kept) <= 1:
            return
        self._next_slot += slot_s          # the prioritize takes the next call slot
        await self._post(session, "prioritize",
                         b'{"Pod":' + pod + b',"Nodes":null,"NodeNames":' + orjson.dumps(kept) + b"}")

    async def extender(self, t0: float, end: float) -> None:
        self.base = self.served.url("")
        slot_s = 1.0 / self.args.extender_rps
        timeout = aiohttp.ClientTimeout(total=5.0)
        connector = aiohttp.TCPConnector(limit=self.args.max_inflight, force_close=False)
        inflight = asyncio.Semaphore(self.args.max_inflight)
        loop = asyncio.get_running_loop()
        self._next_slot = t0
        tasks = set()
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            k = 0
            while self._next_slot < end and loop.time() < end:     # slots still due at the end are not sent
                now = loop.time()
                if self._next_slot > now:
                    await asyncio.sleep(self._next_slot - now)
                    continue
                if inflight.locked():
                    self.inflight_waits += 1
                await inflight.acquire()
                if loop.time() >= end:
                    inflight.release()
                    break
                self.pods_late.append(loop.time() - self._next_slot)
                self._next_slot += slot_s
                self.pods_started += 1

                async def one(k=k):
                    try:
                        await self.schedule_pod(session, k, slot_s)
                    finally:
                        inflight.release()
                task = asyncio.create_task(one())
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                k += 1
            if tasks:
                await asyncio.wait(tasks)

    async def loop_lag(self, t0: float, end: float) -> None:
        """How late this client's own event loop runs a 10 ms timer: a late client delays every
        call it times, so its lag is part of every latency recorded."""
        loop = asyncio.get_running_loop()
        self.lag = array("d")
        await asyncio.sleep(max(0.0, t0 - loop.time()))
        while loop.time() < end:
            due = loop.time() + 0.01
            await asyncio.sleep(0.01)
            self.lag.append(max(0.0, loop.time() - due))

    # every --report-s: memory and the window's calls
    async def reporter(self, t0: float, end: float, start_rss: tuple[float, float]) -> None:
        loop = asyncio.get_running_loop()
        self.rss_series = [(0.0, *start_rss)]
        self.plan_times = set()
        nxt = t0 + self.args.report_s
        cpu_before = cpu_s(self.served.proc.pid)
        while nxt <= end + 1e-6:
            await asyncio.sleep(max(0.0, nxt - loop.time()))
            window = self.tally.take_window()
            own, kids = rss_mib(self.served.proc.pid)
            cpu_now = cpu_s(self.served.proc.pid)
            busy, cpu_before = (cpu_now - cpu_before) / self.args.report_s, cpu_now
            elapsed = loop.time() - t0
            self.rss_series.append((elapsed, own, kids))
            try:
                plan_time = await loop.run_in_executor(None, scrape_plan_time, self.metrics_url)
                self.plan_times.add(plan_time)
            except OSError:
                plan_time = None
            cells = []
            for name in RPCS + VERBS:
                lat = sorted(window.get(name, ()))
                cells.append(f"{name} {len(lat) / self.args.report_s:5.1f}/s p99 {ms(quantile(lat, 0.99)):>6}")
            print(f"[{elapsed:5.0f} s] serve RSS {own:6.1f} MiB (worker {kids:5.1f}), CPU {100 * busy:3.0f}%  "
                  + "  ".join(cells), flush=True)
            nxt += self.args.report_s


# -- the run ------------------------------------------------------------------------------------------

def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration-s", type=float, default=600.0)
    p.add_argument("--scaled-objects", type=int, default=1000)
    p.add_argument("--nodes", type=int, default=200)
    p.add_argument("--polling-interval-s", type=float, default=30.0, help="KEDA's scale loop (default 30)")
    p.add_argument("--hpa-sync-s", type=float, default=15.0, help="the HPA's metric reads (default 15)")
    p.add_argument("--channels", type=int, default=4, help="gRPC channels the reads are spread over")
    p.add_argument("--timeout-s", type=float, default=10.0, help="deadline of each gRPC call")
    p.add_argument("--extender-rps", type=float, default=300.0, help="filter + prioritize calls per second")
    p.add_argument("--node-names", type=int, default=100, help="candidate node names per filter")
    p.add_argument("--pod-mix", choices=("random", "cycle", "one"), default="random",
                   help="which workload each pod belongs to: a random one (default), each in turn, or always the "
                        "first")
    p.add_argument("--max-inflight", type=int, default=32, help="pods being scheduled at once, at most")
    p.add_argument("--only", choices=("keda", "extender"), help="load one door only (to see what each costs)")
    p.add_argument("--refresh-s", type=float, default=15.0, help="serve's --refresh-s")
    p.add_argument("--report-s", type=float, default=60.0)
    p.add_argument("--seed", type=int, default=15)
    args = p.parse_args()
    rng = random.Random(args.seed)

    api, workloads, node_names = cluster(args, rng)
    api.start()
    tmp = Path(tempfile.mkdtemp(prefix="wattwise-load-"))
    kubeconfig = write_kubeconfig(tmp / "kubeconfig", api.url)
    metrics_port = free_port()
    started = time.perf_counter()
    served = serve(tmp, ["serve", "--scaler", "--extender", "--kubeconfig", str(kubeconfig), "--host", "127.0.0.1",
                         "--grpc-port", "0", "--health-port", "0", "--http-port", "0",
                         "--metrics-port", str(metrics_port), "--refresh-s", str(args.refresh_s)])
    try:
        keys = set()
        while len(keys) < len(workloads) and time.perf_counter() - started < 600:
            try:
                keys = {w["key"] for w in served.get("/plan")["workloads"]}
            except OSError:
                pass
            if len(keys) < len(workloads):
                time.sleep(2)
        ready_s = time.perf_counter() - started
        print(f"serve pid {served.proc.pid}: {args.nodes} nodes, {len(workloads)} ScaledObjects; /plan lists "
              f"{len(keys)} workloads {ready_s:.0f} s after start (log: {served.stderr})", flush=True)
        if len(keys) < len(workloads):
            print("not every workload is planned: stopping", file=sys.stderr)
            return 1
        load = Load(args, served, workloads, node_names, rng)
        load.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        scaler_before, extender_before = scrape(load.metrics_url), scrape(served.url("/metrics"))
        start_rss = rss_mib(served.proc.pid)
        cpu_before = os.times()
        keda = "no KEDA" if args.only == "extender" else (
            f"{len(workloads)} ScaledObjects x (1 scale-loop read / {args.polling_interval_s:g} s + 1 HPA read / "
            f"{args.hpa_sync_s:g} s), 3 RPCs per read = "
            f"{3 * len(workloads) * (1 / args.polling_interval_s + 1 / args.hpa_sync_s):.0f} RPC/s")
        extender = "no extender" if args.only == "keda" else (
            f"extender {args.extender_rps:g} calls/s, pods of {args.pod_mix} workloads")
        print(f"load: {keda}; {extender}; {args.duration_s:g} s", flush=True)
        wall = asyncio.run(run(load, args, start_rss))
        cpu_after = os.times()
        end_rss = rss_mib(served.proc.pid)
        hwm = proc_status(served.proc.pid).get("VmHWM", 0) / 1024
        scaler_after, extender_after = scrape(load.metrics_url), scrape(served.url("/metrics"))
        server = {**server_view(scaler_before, scaler_after), **server_view(extender_before, extender_after)}
        report(load, args, wall, start_rss, end_rss, hwm, server,
               (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system))
        alive = served.proc.poll() is None
        print(f"serve still running at the end: {alive}")
    finally:
        code = served.stop()
        api.stop()
        print(f"serve exit code {code}; its log: {served.stderr} "
              f"({sum(1 for line in served.log().splitlines() if ' ERROR ' in line or 'Traceback' in line)} "
              f"ERROR/Traceback lines, {sum(1 for line in served.log().splitlines() if ' WARNING ' in line)} WARNING)")
    return 0


async def run(load: Load, args, start_rss) -> float:
    loop = asyncio.get_running_loop()
    address = f"127.0.0.1:{load.served.grpc_port}"
    channels = [grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
                for _ in range(args.channels)]
    for c in channels:
        await asyncio.wait_for(c.channel_ready(), 10)
    t0 = loop.time() + 0.5
    end = t0 + args.duration_s
    begun = time.perf_counter()
    load.tally.end = begun + 0.5 + args.duration_s
    load.server_cpu_before = cpu_s(load.served.proc.pid)
    doors = [] if args.only == "extender" else [load.keda(t0, end, channels)]
    doors += [] if args.only == "keda" else [load.extender(t0, end)]
    await asyncio.gather(*doors, load.reporter(t0, end, start_rss), load.loop_lag(t0, end))
    wall = time.perf_counter() - begun - 0.5
    load.server_cpu = cpu_s(load.served.proc.pid) - load.server_cpu_before
    for c in channels:
        await c.close()
    return wall


def report(load: Load, args, wall: float, start_rss, end_rss, hwm: float, server: dict, client_cpu_s: float) -> None:
    t = load.tally
    d = args.duration_s
    print()
    print(f"{'RPC / verb':<14}{'calls':>8}{'/s':>8}{'errors':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
          f"{'server p99 ms':>15}  errors by code; the server's count by code")
    for name in RPCS + VERBS:
        lat = sorted(t.latency.get(name, ()))
        errors = t.errors.get(name, Counter())
        codes, p99 = server.get(name, ({}, float("nan")))
        server_p99 = f"<= {ms(p99)}" if p99 == p99 else "-"
        in_window = len(lat) - t.done_after[name]
        print(f"{name:<14}{len(lat):>8}{in_window / d:>8.1f}{sum(errors.values()):>8}{ms(quantile(lat, 0.5)):>9}"
              f"{ms(quantile(lat, 0.99)):>9}{ms(lat[-1] if lat else float('nan')):>9}{server_p99:>15}  "
              f"{dict(errors) or '-'}; {codes}")
    print("(/s: calls answered within the --duration-s window, per second; calls: all, including those "
          "answered while draining)")
    rpcs = sum(len(t.latency.get(n, ())) - t.done_after[n] for n in RPCS)
    calls = sum(len(t.latency.get(n, ())) - t.done_after[n] for n in VERBS)
    target_rpcs = 0 if args.only == "extender" else 3 * len(load.refs) * (1 / args.polling_interval_s + 1 / args.hpa_sync_s)
    target_calls = 0 if args.only == "keda" else args.extender_rps
    keda_late, pods_late = sorted(load.keda_late), sorted(load.pods_late)
    print()
    print(f"run {d:g} s, then {wall - d:.1f} s draining calls in flight; serve used {load.server_cpu:.0f} CPU s "
          f"({100 * load.server_cpu / wall:.0f}% of one core); this client {client_cpu_s:.0f} CPU s "
          f"({100 * client_cpu_s / wall:.0f}%, the fake API's thread included)")
    lag = sorted(load.lag)
    print(f"this client's event loop: a 10 ms timer late by p50 {ms(quantile(lag, 0.5))} ms, p99 "
          f"{ms(quantile(lag, 0.99))} ms, max {ms(lag[-1] if lag else float('nan'))} ms")
    print(f"KEDA: {load.reads} reads started ({load.reads / d:.1f}/s, target {target_rpcs / 3:.0f}/s), late by p99 "
          f"{ms(quantile(keda_late, 0.99))} ms, max {ms(keda_late[-1] if keda_late else float('nan'))} ms; "
          f"{rpcs / d:.1f} RPC/s answered in the window (target {target_rpcs:.0f})")
    print(f"extender: {load.pods_started} pods started ({load.pods_started / d:.1f}/s), late by p99 "
          f"{ms(quantile(pods_late, 0.99))} ms, max {ms(pods_late[-1] if pods_late else float('nan'))} ms, "
          f"{load.inflight_waits} times held back by --max-inflight {args.max_inflight}; filter kept "
          f"{dict(load.filter_kept)} names; {calls / d:.1f} calls/s answered in the window (target "
          f"{target_calls:g})")
    for label, achieved, target in (("KEDA", rpcs / d, target_rpcs), ("extender", calls / d, target_calls)):
        if achieved < 0.98 * target:
            print(f"  NOT kept up on {label}: {achieved:.1f}/s of {target:.0f}/s")
    print(f"serve VmRSS: start {start_rss[0]:.1f} MiB, end {end_rss[0]:.1f} MiB ({end_rss[0] - start_rss[0]:+.1f}); "
          f"VmHWM {hwm:.1f} MiB; planner worker {start_rss[1]:.1f} -> {end_rss[1]:.1f} MiB")
    print(f"plans seen at the per-report scrapes: {len(load.plan_times - {None})} distinct plan times")


if __name__ == "__main__":
    sys.exit(main())
