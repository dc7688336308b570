"""Per-workload power recovered through a real Prometheus, for both Kepler schemas (issue 14).

The end-to-end tests' replayed cluster (`tests/e2e/world.py`: the recorded cluster, three
workloads, the truth from the product's priors) runs live for --seconds, scraped every second by a
real Prometheus (both Kepler DaemonSets at once, kube-state-metrics, the pipeline's FPS gauges, the
Prometheus Operator's target labels), with the disturbances of a real cluster: StatefulSet pods
rescheduled onto another node class (Kepler 0.10 keeping their terminated series), Deployment pods
replaced (new names, series ending and starting), and Kepler restarts (every counter of a node from
zero after a few seconds down). Then `wattwise fit`'s code (`fit_from_prometheus`) fits each
schema's history, and for every pair the fitted power at the pair's median FPS is compared with the
truth there.

    .venv/bin/python benchmarks/replay_power_accuracy.py [--seconds 240]

Prints one line per schema and pair (samples used and left out, median FPS, fitted and true power,
error) and exits 1 when an error exceeds --tolerance (5%).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.e2e.replay_exporter import ReplayPod  # noqa: E402
from tests.e2e.world import CHECKOUT, NS, build  # noqa: E402
from wattwise.telemetry.fit_cli import FitJob, fit_from_prometheus  # noqa: E402
from wattwise.telemetry.prometheus.schema import KeplerSchema  # noqa: E402
from wattwise.telemetry.prometheus.source import SourceSettings  # noqa: E402

SCHEMAS = ("0.10", "0.9")


def disturbances(seconds: float) -> list[tuple[float, str, tuple]]:
    """(at, what, arguments), as fractions of the run scaled to seconds."""
    return sorted([
        (0.20 * seconds, "move", ("parking-lpr-0", "milan-snp-1", "10.244.9.90")),
        (0.30 * seconds, "restart", ("icx-sgx-1",)),
        (0.35 * seconds, "replace", ("spr-tdx-1",)),
        (0.45 * seconds, "move", ("parking-lpr-5", "icx-sgx-1", "10.244.9.91")),
        (0.55 * seconds, "restart", ("spr-tdx-2",)),
        (0.65 * seconds, "replace", ("spr-tdx-2",)),
        (0.75 * seconds, "move", ("parking-lpr-0", "icx-sgx-1", "10.244.9.92")),
        (0.85 * seconds, "restart", ("milan-snp-1",)),
    ])


def replace_pod(world, node: str, serial: int) -> str:
    """A Deployment replica on `node` deleted and a new one (a new name) created there."""
    c = world.cluster
    with c.lock:
        victim = next(p for p in c.pods.values() if p.workload == CHECKOUT and p.node == node and p.running)
    c.remove_pod(victim.namespace, victim.name)
    name = f"checkout-cams-7c9d8f6b4-new{serial:02d}"
    c.add_pod(ReplayPod(NS, name, node, "", ip=f"10.244.8.{serial}", labels=dict(victim.labels),
                        owner_kind="ReplicaSet", owner_name=victim.owner_name, cpu_m=victim.cpu_m,
                        workload=CHECKOUT))
    return f"{victim.name} -> {name} on {node}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=240.0, help="how long the cluster runs (default 240)")
    parser.add_argument("--tolerance", type=float, default=0.05, help="largest error allowed (default 0.05)")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="wattwise-replay-accuracy-"))
    world = build(workdir)
    try:
        t0 = world.started_s
        for serial, (at_s, what, a) in enumerate(disturbances(args.seconds), start=1):
            time.sleep(max(0.0, t0 + at_s - time.time()))
            if what == "move":
                world.cluster.move_pod(NS, a[0], a[1], gap_s=2.0, ip=a[2])
                done = f"{a[0]} -> {a[1]}"
            elif what == "restart":
                world.cluster.restart_kepler(a[0], down_s=2.0)
                done = f"Kepler on {a[0]}"
            else:
                done = replace_pod(world, a[0], serial)
            print(f"{time.time() - t0:6.1f} s  {what:8s} {done}", flush=True)
        time.sleep(max(0.0, t0 + args.seconds - time.time()))
        end_s = float(int(time.time()) - 2)
        start_s = float(int(t0) + 10)
        print(f"\nfitting {end_s - start_s:.0f} s of history at a 1 s step ({world.exporter.aborted} scrape(s) "
              "abandoned by Prometheus)\n")
        header = (f"{'schema':6s} {'workload':22s} {'node class':15s} {'samples':>7s} {'left out':>30s} "
                  f"{'fps p50':>7s} {'fitted W':>8s} {'true W':>8s} {'error':>7s}")
        print(header)
        print("-" * len(header))
        worst = 0.0
        for schema in SCHEMAS:
            settings = SourceSettings(workload_label="wattwise.io/workload", scrape_interval_s=1.0,
                                      schema=KeplerSchema(schema))
            report = fit_from_prometheus(FitJob(world.prometheus.url, settings, step_s=1.0), start_s, end_s).report
            for p in sorted(report["pairs"], key=lambda p: (p["workload"], p["node_class"])):
                truth = world.cluster.truths.get((p["workload"], p["node_class"]))
                if truth is None or p["prior"] or p["fps_median"] is None:
                    print(f"{schema:6s} {p['workload']:22s} {p['node_class']:15s} {p['samples_used']:7d} "
                          f"{'':>30s} {'':>7s} {'':>8s} {'':>8s}  not fitted: {p['note']}")
                    continue
                fps = p["fps_median"]
                want = truth.power_w(fps)
                got = p["power_w_at_fps_median"]
                error = got / want - 1
                worst = max(worst, abs(error))
                left = ", ".join(f"{k} {v}" for k, v in sorted(p["samples_excluded"].items()) if k != "gap")
                print(f"{schema:6s} {p['workload']:22s} {p['node_class']:15s} {p['samples_used']:7d} {left:>30s} "
                      f"{fps:7.2f} {got:8.2f} {want:8.2f} {error:+7.1%}")
            print(f"{'':6s} counter resets (exporter restarts): {report['counter_resets']}; workload from: "
                  f"{report['workload_from']}")
        ok = worst <= args.tolerance
        print(f"\nlargest error {worst:.1%} ({'within' if ok else 'OUTSIDE'} {args.tolerance:.0%})")
        return 0 if ok else 1
    finally:
        world.stop()


if __name__ == "__main__":
    sys.exit(main())
