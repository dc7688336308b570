"""In-process figures of the extender's names mode at 5,000 candidate nodes: reading the names
(NameIndex.find, the C accelerator) and whole filter and prioritize calls (ExtenderService, no
HTTP), with the CPU caches warm and with them emptied before every call.

Emptied caches are what a call meets in a cluster: between two requests other work (the kernel's
socket copies, the scheduler, neighbours on a shared host) evicts the node table, the encoded
entries and the interpreter's own data. Warm figures alone hide what prefetching and a smaller
working set are worth. Names are short (`node-00042`) or as long as cloud providers' (44 bytes).

    .venv/bin/python benchmarks/names_bench.py            # medians of 300 calls per cell
    .venv/bin/python benchmarks/names_bench.py --calls 1000

extender_bench.py measures the same calls over HTTP against the echo baseline (the issue's
figure); this one says where the time of a call goes.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import extender_bench as fleet  # noqa: E402  (the HTTP benchmark's fleet, pod and encoding)

EVICT_BYTES = 64 << 20   # more than the last-level cache of the machines this runs on
N_NODES = 5000
VARIANTS = 64


def long_name(i: int) -> str:
    return f"ip-10-{i // 250}-{i % 250}-{(i * 7) % 250}.eu-central-1.compute.internal"


def service_for(names: list[str]):
    """An extender service with the benchmark fleet's nodes under `names`."""
    from wattwise.models.scenario import load_scenario
    from wattwise.runtime import StaticPlanSource
    from wattwise.scheduler.node_cache import StaticNodeCache
    from wattwise.scheduler.service import ExtenderService

    rng = random.Random(7)
    nodes = []
    for i, name in enumerate(names):
        node = fleet.make_node(i, rng)
        node["metadata"]["name"] = node["metadata"]["labels"]["kubernetes.io/hostname"] = name
        nodes.append(node)
    source = StaticPlanSource(load_scenario(fleet.REPO / "scenarios" / "metro-retail.yaml").snapshot)
    return ExtenderService(source, StaticNodeCache.from_node_json(nodes))


def requests(names: list[str]) -> list[bytes]:
    """Candidate lists as extender_bench's `names~`: each a different 99% of the nodes, shuffled."""
    bodies = []
    for v in range(VARIANTS):
        pick = random.Random(v)
        drop = set(pick.sample(range(len(names)), len(names) // 100))
        kept = [n for i, n in enumerate(names) if i not in drop]
        pick.shuffle(kept)
        bodies.append(fleet.go_json({"Pod": fleet.POD, "Nodes": None, "NodeNames": kept}))
    return bodies


def median_us(call, bodies: list[bytes], calls: int, evict: np.ndarray | None) -> float:
    took = []
    for i in range(calls):
        body = bodies[i % len(bodies)]
        if evict is not None:
            evict += 1          # writes every line of a buffer larger than the caches
            bytes(body)         # the request itself is fresh: the kernel has just copied it
        started = time.perf_counter()
        call(body)
        took.append(time.perf_counter() - started)
    return 1e6 * statistics.median(took)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args(argv)
    from wattwise.scheduler import wire
    from wattwise.scheduler.fragments import accelerated

    if not accelerated():
        print("the names-mode accelerator is not built: find() has nothing to measure")
        return 1
    evict = np.zeros(EVICT_BYTES // 8, dtype=np.int64)
    print(f"{'names':6} {'caches':8} {'find us':>8} {'filter us':>10} {'prioritize us':>14}")
    for kind, make in (("short", lambda i: f"node-{i:05d}"), ("long", long_name)):
        names = [make(i) for i in range(N_NODES)]
        service = service_for(names)
        bodies = requests(names)
        head = wire.names_head(bodies[0])
        index = service.decider().name_index(service.node_cache.nodes())
        service.filter(bodies[0]), service.prioritize(bodies[0])   # memos, fragments, entries
        for caches, pollute in (("warm", None), ("emptied", evict)):
            find = median_us(lambda b: index.find(b, head.names_at), bodies, args.calls, pollute)
            filt = median_us(service.filter, bodies, args.calls, pollute)
            prio = median_us(service.prioritize, bodies, args.calls, pollute)
            print(f"{kind:6} {caches:8} {find:8.1f} {filt:10.1f} {prio:14.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
