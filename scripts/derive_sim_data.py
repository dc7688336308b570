"""Derive the simulator's bundled traces from ../shared/data (run from the repository root).

- data/carbon/<ZONE>_2023-06.csv: two weeks (2023-06-01 .. 2023-06-14, hourly, UTC) cut from the
  Electricity Maps data-portal exports, every column kept, rows unchanged.
- data/demand/genai_requests_2024-11.csv: two weeks of the Alibaba GenAI LoRA request trace
  (2024-11-18 .. 2024-12-01), one row per request, only `gmt_create` and `exec_time_seconds`.

Usage: python scripts/derive_sim_data.py [--shared ../shared/data]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

ZONES = ("DE-LU", "GB", "US-CAL-CISO")
CARBON_START, CARBON_END = "2023-06-01 00:00:00", "2023-06-15 00:00:00"
DEMAND_START, DEMAND_END = "2024-11-18 00:00:00", "2024-12-02 00:00:00"
DEMAND_COLUMNS = ["gmt_create", "exec_time_seconds"]


def derive_carbon(shared: Path, out: Path) -> None:
    for zone in ZONES:
        src = shared / "carbon" / f"{zone}_2023_hourly.csv"
        frame = pd.read_csv(src, dtype=str, keep_default_na=False, encoding="utf-8")
        times = pd.to_datetime(frame["Datetime (UTC)"])
        keep = frame[(times >= CARBON_START) & (times < CARBON_END)]
        dest = out / "carbon" / f"{zone}_2023-06.csv"
        keep.to_csv(dest, index=False, encoding="utf-8")
        print(f"{dest}: {len(keep)} rows", file=sys.stderr)


def derive_demand(shared: Path, out: Path) -> None:
    src = shared / "demand" / "alibaba_genai_lora_request_trace.csv"
    frame = pd.read_csv(src, usecols=DEMAND_COLUMNS, dtype={"gmt_create": str})
    times = pd.to_datetime(frame["gmt_create"])
    keep = frame[(times >= DEMAND_START) & (times < DEMAND_END)].sort_values("gmt_create", kind="stable")
    dest = out / "demand" / "genai_requests_2024-11.csv"
    keep.to_csv(dest, index=False)
    print(f"{dest}: {len(keep)} rows", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("data"))
    args = parser.parse_args(argv)
    (args.out / "carbon").mkdir(parents=True, exist_ok=True)
    (args.out / "demand").mkdir(parents=True, exist_ok=True)
    derive_carbon(args.shared, args.out)
    derive_demand(args.shared, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
