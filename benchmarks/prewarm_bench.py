"""What predictive pre-warming gives: SLA and energy of `wattwise` (with the forecaster) against
`wattwise-reactive` (without), and the best node-autoscaling peer, on the bundled week and on a
trace with sharp ramps (shift changes: demand jumps from its floor to its peak within a minute at
08:00 and 17:00 each day, the kind of ramp a slow confidential start-up misses).

The ramp trace is written by this script (synthetic, labelled so): per-minute rows, the bundled
scenario's workloads scaled by it through their demand profiles. Usage, from the repository root:

    .venv/bin/python benchmarks/prewarm_bench.py [--days 7] [--workers 2]
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

from wattwise.models import BUNDLED_SCENARIO
from wattwise.simulations.run import simulate

POLICIES = ["keda-tuned-ca", "wattwise-reactive", "wattwise"]


def ramp_trace(path: Path, days: int) -> Path:
    start = datetime(2024, 11, 18, tzinfo=timezone.utc)
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["timestamp", "load"])
        for minute in range(days * 24 * 60):
            t = start + timedelta(minutes=minute)
            hour = t.hour + t.minute / 60
            load = 100.0 if 8 <= hour < 12 or 17 <= hour < 21 else (60.0 if 12 <= hour < 17 else 8.0)
            out.writerow([t.isoformat(), load])
    return path


def row(name: str, p: dict) -> str:
    return (f"  {name:<18} SLA {p['sla_attainment']:.4%}  dropped {p['dropped_frames']:>10.0f}  "
            f"energy {p['energy_kwh']:8.2f} kWh  {p['energy_j_per_frame']:.3f} J/frame  planner calls "
            f"{p.get('planner_calls', '-')}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        runs = {"bundled week (real demand trace)": {},
                "sharp ramps (synthetic shift changes)": {"demand_csv": ramp_trace(Path(tmp) / "ramps.csv", args.days)}}
        for label, extra in runs.items():
            result = simulate(BUNDLED_SCENARIO, POLICIES, days=args.days, workers=args.workers, **extra)
            p = result.summary["policies"]
            print(f"{label}, {args.days} days:")
            for name in POLICIES:
                print(row(name, p[name]))
            warm, cold = p["wattwise"], p["wattwise-reactive"]
            print(f"  pre-warming: dropped frames {warm['dropped_frames'] / max(cold['dropped_frames'], 1):.2f}x, "
                  f"energy {warm['energy_kwh'] / cold['energy_kwh']:.3f}x of wattwise without it\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
