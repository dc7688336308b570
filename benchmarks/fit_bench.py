"""Fitting throughput: 100 workloads x 5 node classes x 7 days at 15 s, from data already fetched.

One replica per (workload, node class), so 500 pods x 40,321 samples = 20.2 million rows go
through hygiene and fitting. Prints the median of --repeat runs. Budget: 30 s.

    .venv/bin/python benchmarks/fit_bench.py [--workloads 100 --classes 5 --days 7 --repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd

from wattwise.telemetry.fitting import fit_energy_models


def make_samples(workloads: int, classes: int, days: float, step_s: float = 15.0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(0, days * 86400 + 1, step_s)
    n_pairs, n_t = workloads * classes, len(t)
    c0 = rng.uniform(5, 20, n_pairs)
    c1 = rng.uniform(0.3, 3.0, n_pairs)
    cap = rng.uniform(20, 90, n_pairs)
    # offered FPS follows a daily cycle plus noise, per pair
    phase = rng.uniform(0, 2 * np.pi, n_pairs)[:, None]
    offered = cap[:, None] * (0.55 + 0.5 * np.sin(2 * np.pi * t[None, :] / 86400 + phase)
                              + rng.normal(0, 0.05, (n_pairs, n_t)))
    fps = np.clip(offered, 0.5, cap[:, None])
    power = (c0[:, None] + c1[:, None] * fps) * (1 + rng.normal(0, 0.01, (n_pairs, n_t)))
    pair = np.repeat(np.arange(n_pairs), n_t)
    names_w = [f"ns/workload-{i:03d}" for i in range(workloads)]
    names_c = [f"class-{j}" for j in range(classes)]
    return pd.DataFrame({
        "t_s": np.tile(t, n_pairs),
        "workload": pd.Categorical.from_codes(pair // classes, names_w),
        "pod": pd.Categorical.from_codes(pair, [f"pod-{k}" for k in range(n_pairs)]),
        "node": pd.Categorical.from_codes(pair % classes, [f"node-{j}" for j in range(classes)]),
        "node_class": pd.Categorical.from_codes(pair % classes, names_c),
        "power_w": power.ravel(), "fps": fps.ravel(), "drop_fps": np.maximum(offered - fps, 0).ravel()})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workloads", type=int, default=100)
    ap.add_argument("--classes", type=int, default=5)
    ap.add_argument("--days", type=float, default=7)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    t0 = time.perf_counter()
    samples = make_samples(args.workloads, args.classes, args.days)
    print(f"generated {len(samples):,} rows ({samples.memory_usage(deep=True).sum() / 1e9:.2f} GB) "
          f"in {time.perf_counter() - t0:.1f} s")
    times, cpu = [], []
    for _ in range(args.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        result = fit_energy_models(samples)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    fitted = sum(not p["prior"] for p in result.pairs)
    mape = statistics.median(p["holdout_mape"] for p in result.pairs if p["holdout_mape"] is not None)
    print(f"fit {args.workloads} workloads x {args.classes} classes x {args.days:g} days at 15 s: "
          f"median {statistics.median(times):.2f} s wall, {statistics.median(cpu):.2f} s CPU over {args.repeat} runs "
          f"(wall min {min(times):.2f}, max {max(times):.2f}); "
          f"{fitted} pairs fitted, median hold-out MAPE {100 * mape:.2f}%  [budget 30 s]")


if __name__ == "__main__":
    main()
