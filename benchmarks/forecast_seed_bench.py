"""Benchmark of seeding a pre-warming forecaster with a day of history (what the live scaler's
forecast backfill does for each workload it first plans, on the refresher's thread): the core's
`DemandForecaster.seed` against adding every refresh's sample, for one workload-day at a given
refresh step, median of `--rounds`. The live scaler spends at most 10 s a refresh on backfill
(range reads included), so this says how many workloads a start-up seeds before the budget ends.

    .venv/bin/python benchmarks/forecast_seed_bench.py              # 15 s refreshes, a few seconds
    .venv/bin/python benchmarks/forecast_seed_bench.py --step-s 60
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from wattwise.models.forecast import DAY_S, DemandForecaster


def day(step_s: float) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(0.0, DAY_S, step_s) + 1_700_006_400.0
    rng = np.random.default_rng(0)
    return t, 100.0 + 80.0 * np.sin(2 * np.pi * t / DAY_S) + rng.normal(0, 5, len(t))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step-s", type=float, default=15.0, help="the refresh step (default 15)")
    parser.add_argument("--lead-s", type=float, default=165.0, help="the forecast's lead (default 165: a GPU TEE)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    t, fps = day(args.step_s)
    seeded, added = [], []
    for _ in range(args.rounds):
        f = DemandForecaster(["w"], [args.lead_s])
        start = time.perf_counter()
        f.seed("w", t, fps)
        seeded.append(time.perf_counter() - start)
        g = DemandForecaster(["w"], [args.lead_s])
        start = time.perf_counter()
        for when, value in zip(t.tolist(), fps.tolist()):
            g.add(when, [value])
        added.append(time.perf_counter() - start)
    s, a = statistics.median(seeded), statistics.median(added)
    print(f"a day at {args.step_s:g} s ({len(t)} samples), lead {args.lead_s:g} s, median of {args.rounds}:")
    print(f"  seed:             {s * 1000:8.1f} ms a workload ({10.0 / s:,.0f} workloads in a 10 s budget, reads aside)")
    print(f"  add every sample: {a * 1000:8.1f} ms a workload ({a / s:.1f}x)")


if __name__ == "__main__":
    main()
