"""Benchmark of the scheduler extender: filter and prioritize for a managed confidential pod
(TDX) at 500 and 5,000 candidate node names (nodeCacheCapable: true), side by side with a trivial
/echo endpoint on the same aiohttp server, in one run, from one client process. The extender's
node cache holds 5,000 nodes of a mixed fleet (TDX, SGX, SEV-SNP, plain); each size cycles
through 64 different candidate lists, each a different 99% of that many nodes in its own random
order, as kube-scheduler's lists differ from pod to pod. Requests are compact JSON, as
kube-scheduler's Go encoder writes them.

    .venv/bin/python benchmarks/extender_bench.py              # about 2 minutes
    .venv/bin/python benchmarks/extender_bench.py --nodes      # also full NodeLists (nodeCacheCapable: false)
    .venv/bin/python benchmarks/extender_bench.py --json both  # orjson and the standard library's json

The extender runs in a process of its own, as in a cluster. The client is http.client on a
keep-alive connection per size (TCP_NODELAY on both ends), calling one request at a time like
kube-scheduler does. The echo endpoint gets the same request body and returns it: it measures
the HTTP stack and the transfer alone. Every call, echo or verb, is timed from sending the request
until its whole reply body is read (the client does not decode it), and must answer 200. Each
cell is the median over `--rounds` rounds of p50, p99 and calls per second. The rounds of echo,
filter and prioritize take turns, so that a busy neighbour on the machine weighs on all three
alike, and each starts from a fresh garbage collection, so that one owed to setting up the
requests does not land in one endpoint's round. The target: p99 at most 5 ms at 5,000 names.
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

NFD = "feature.node.kubernetes.io/"
# (class, zone prefix, labels, extra allocatable) of a realistic mixed fleet
FLEET = [
    ("spr-amx-tdx", {NFD + "cpu-security.tdx.enabled": "true", "intel.feature.node.kubernetes.io/tdx": "true",
                     NFD + "cpu-cpuid.AMXTILE": "true", NFD + "cpu-cpuid.AMXBF16": "true",
                     NFD + "cpu-model.vendor_id": "Intel", NFD + "cpu-model.family": "6", NFD + "cpu-model.id": "143"},
     {"tdx.intel.com/keys": "64"}, "112"),
    ("icx-sgx", {NFD + "cpu-security.sgx.enabled": "true", NFD + "cpu-model.vendor_id": "Intel",
                 NFD + "cpu-model.family": "6", NFD + "cpu-model.id": "106"}, {"sgx.intel.com/epc": "137438953472"}, "64"),
    ("milan-snp", {NFD + "cpu-security.sev.snp.enabled": "true", "amd.feature.node.kubernetes.io/snp": "true",
                   NFD + "cpu-model.vendor_id": "AMD", NFD + "cpu-model.family": "25", NFD + "cpu-model.id": "1"},
     {"sev-snp.amd.com/esids": "509"}, "128"),
    ("clx-plain", {NFD + "cpu-model.vendor_id": "Intel", NFD + "cpu-model.family": "6", NFD + "cpu-model.id": "85"}, {}, "28"),
]
ZONES = ["eu-central-1a", "uk-south-1a", "us-west-1a"]
VARIANTS = 64


def make_node(i: int, rng: random.Random) -> dict:
    cls, labels, extra, cores = FLEET[i % len(FLEET)]
    zone = ZONES[rng.randrange(len(ZONES))]
    name = f"node-{i:05d}"
    alloc = {"cpu": f"{int(cores) * 1000 - 500}m", "memory": "257654080Ki", "ephemeral-storage": "1812588184532",
             "pods": "110", **extra}
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "uid": f"6a1f3c2e-{i:04d}-4b7e-9c1d-0f2e3d4c5b6a", "resourceVersion": str(900000 + i),
                     "creationTimestamp": "2025-06-02T07:11:58Z",
                     "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                                "topology.kubernetes.io/zone": zone, "topology.kubernetes.io/region": zone[:-1],
                                "wattwise.io/node-class": cls, **labels},
                     "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                                     "volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
        "spec": {"podCIDR": f"10.{i // 250}.{i % 250}.0/24", "providerID": f"metal://{name}"},
        "status": {"allocatable": alloc, "capacity": {**alloc, "cpu": cores},
                   "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                   "message": "kubelet is posting ready status",
                                   "lastHeartbeatTime": "2025-06-12T09:41:27Z",
                                   "lastTransitionTime": "2025-06-02T07:12:40Z"}],
                   "addresses": [{"type": "InternalIP", "address": f"10.200.{i // 250}.{i % 250}"},
                                 {"type": "Hostname", "address": name}],
                   "nodeInfo": {"kubeletVersion": "v1.32.5", "containerRuntimeVersion": "containerd://1.7.27",
                                "kernelVersion": "6.8.0-1014-generic", "osImage": "Ubuntu 24.04.2 LTS",
                                "architecture": "amd64", "operatingSystem": "linux"}}}


POD = {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": "checkout-cams-6d9f7c8b5-x2k9q", "namespace": "retail",
                    "labels": {"app": "checkout-cams", "wattwise.io/workload": "checkout-cams"}},
       "spec": {"runtimeClassName": "kata-qemu-tdx", "schedulerName": "wattwise-scheduler",
                "containers": [{"name": "inference", "image": "registry.example.com/retail/detector:2.3.1-bf16",
                                "resources": {"requests": {"cpu": "4", "memory": "8Gi"}}}],
                "overhead": {"cpu": "1", "memory": "2Gi"}}}


def go_json(doc) -> bytes:
    """Compact JSON, as Go's encoding/json writes it."""
    return json.dumps(doc, separators=(",", ":")).encode()


def measure(conn: http.client.HTTPConnection, path: str, bodies: list[bytes], calls: int, warmup: int) -> dict:
    """`bodies` are sent in turn (one body: the same request again and again)."""
    headers = {"Content-Type": "application/json"}
    for i in range(warmup):
        conn.request("POST", path, bodies[i % len(bodies)], headers)
        r = conn.getresponse()
        r.read()
        assert r.status == 200, (path, r.status)
    gc.collect()
    lat = []
    started = time.perf_counter()
    for i in range(calls):
        body = bodies[i % len(bodies)]
        t0 = time.perf_counter()
        conn.request("POST", path, body, headers)
        r = conn.getresponse()
        r.read()
        lat.append(time.perf_counter() - t0)
        assert r.status == 200, (path, r.status)
    total = time.perf_counter() - started
    lat.sort()
    return {"p50_ms": 1000 * lat[len(lat) // 2], "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))],
            "calls_s": calls / total}


def serve(backend: str, n_nodes: int) -> None:
    """The server side, in a process of its own (as an extender is: kube-scheduler never shares
    its interpreter): the extender with /echo and `n_nodes` nodes cached. Prints its port and the
    JSON backend, then serves until stdin closes."""
    from wattwise.models.scenario import load_scenario
    from wattwise.runtime import StaticPlanSource
    from wattwise.scheduler import wire
    from wattwise.scheduler.node_cache import StaticNodeCache
    from wattwise.scheduler.server import start_extender

    used = wire.set_json_backend(backend)
    rng = random.Random(7)
    nodes = [make_node(i, rng) for i in range(n_nodes)]
    source = StaticPlanSource(load_scenario(REPO / "scenarios" / "metro-retail.yaml").snapshot)
    handle = start_extender(source, "127.0.0.1", 0, StaticNodeCache.from_node_json(nodes), echo=True)
    print(handle.port, used, flush=True)
    sys.stdin.read()
    handle.stop(2.0)


def run(backend: str, sizes, cached: int, rounds: int, calls: int, with_nodes: bool) -> list[dict]:
    server = subprocess.Popen([sys.executable, __file__, "--serve", "--json", backend, "--cached", str(cached)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    port, used = server.stdout.readline().split()
    rng = random.Random(7)   # the server's nodes, made alike
    nodes = [make_node(i, rng) for i in range(cached)]
    rows = []
    try:
        for n in sizes:
            names = [x["metadata"]["name"] for x in nodes[:n]]
            varied = []   # each without a different 1% of the nodes, in its own order
            for v in range(VARIANTS):
                pick = random.Random(v)
                drop = set(pick.sample(range(n), max(1, n // 100)))
                kept = [x for i, x in enumerate(names) if i not in drop]
                pick.shuffle(kept)
                varied.append(go_json({"Pod": POD, "Nodes": None, "NodeNames": kept}))
            modes = [("names", varied, calls)]
            if with_nodes:
                full = go_json({"Pod": POD, "Nodes": {"apiVersion": "v1", "kind": "NodeList", "metadata": {},
                                                      "items": nodes[:n]}, "NodeNames": None})
                modes.append(("nodes", [full], max(10, calls // 50)))
            for mode, bodies, count in modes:
                # a connection per mode (an extender serves one mode, so no connection carries both)
                conn = http.client.HTTPConnection("127.0.0.1", int(port))
                verbs = ("echo", "filter", "prioritize")
                results = {verb: [] for verb in verbs}
                for _ in range(rounds):   # echo's rounds interleaved with the verbs': the same conditions
                    for verb in verbs:
                        results[verb].append(measure(conn, f"/{verb}", bodies, count, warmup=5))
                for verb in verbs:
                    rows.append({"json": used, "nodes": n, "mode": mode, "verb": verb, "body_kb": len(bodies[0]) / 1024,
                                 **{k: statistics.median(r[k] for r in results[verb]) for k in results[verb][0]}})
                    print_row(rows[-1], flush=True)
                conn.close()
    finally:
        server.stdin.close()
        server.wait(10)
    return rows


def print_header() -> None:
    print(f"{'json':7} {'nodes':>6} {'mode':6} {'verb':11} {'body KB':>8} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'calls/s':>9} {'p50/echo':>9} {'p99/echo':>9}")


def print_row(r: dict, flush: bool = False, echo: dict | None = None) -> None:
    ratios = f" {r['p50_ms'] / echo['p50_ms']:>8.2f}x {r['p99_ms'] / echo['p99_ms']:>8.2f}x" if echo else ""
    print(f"{r['json']:7} {r['nodes']:>6} {r['mode']:6} {r['verb']:11} {r['body_kb']:>8.1f} {r['p50_ms']:>8.2f} "
          f"{r['p99_ms']:>8.2f} {r['calls_s']:>9.0f}{ratios}", flush=flush)


def summary(rows: list[dict]) -> None:
    echo = {(r["json"], r["nodes"], r["mode"]): r for r in rows if r["verb"] == "echo"}
    print_header()
    for r in rows:
        print_row(r, echo=echo[(r["json"], r["nodes"], r["mode"])] if r["verb"] != "echo" else None)
    print()
    for r in rows:
        if r["nodes"] == 5000 and r["mode"] == "names" and r["verb"] != "echo":
            print(f"[{r['json']}] 5,000 names {r['verb']:10}: p99 {r['p99_ms']:.2f} ms "
                  f"-> target p99 <= 5 ms: {'MET' if r['p99_ms'] <= 5.0 else 'MISSED'}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", choices=["stdlib", "orjson", "both"], default="orjson")
    parser.add_argument("--sizes", default="500,5000", help="candidate names per request")
    parser.add_argument("--cached", type=int, default=5000, help="nodes in the extender's cache")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=1000, help="calls per round and endpoint")
    parser.add_argument("--nodes", action="store_true", help="also full NodeLists (fewer calls)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)   # the server process
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.json, args.cached)
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    if max(sizes) > args.cached:
        parser.error(f"--sizes up to {max(sizes)} need --cached {max(sizes)} or more")
    backends = ["orjson", "stdlib"] if args.json == "both" else [args.json]
    rows = []
    print_header()
    for b in backends:
        rows += run(b, sizes, args.cached, args.rounds, args.calls, args.nodes)
    print()
    summary(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
