"""Derive telemetry/data/specpower_curves.csv from ../shared/data/power/specpower_ssj2008_results.csv.

Keeps a handful of real SPECpower_ssj2008 results (11-point power curves) used by the bundled
scenario. Run from the repository root: python scripts/derive_power_curves.py
"""

import sys
from pathlib import Path

import pandas as pd

SOURCE = Path("../shared/data/power/specpower_ssj2008_results.csv")
# SPEC result hash -> (CPU generation, why it is here). The generation is the name
# models/power_source.py gives the CPU's NFD family and model numbers, so a discovered node of the
# same generation can use the curve.
KEEP = {
    "12788444166992774608": ("Ice Lake", "2S Xeon Platinum 8380 (Ice Lake): SGX; proxy curve for Sapphire Rapids AMX/TDX"),
    "14763901223989068807": ("Ice Lake", "2S Xeon Platinum 8352Y (Ice Lake): SGX"),
    "4587479338991315710": ("Milan", "2S EPYC 7763 (Milan): SEV-SNP"),
    "13770517748742578479": ("Cascade Lake", "1S Xeon Gold 6238R (Cascade Lake): no AMX, no TEE"),
    "14088327285564034618": ("Milan", "1S EPYC 7763 (Milan): SEV-SNP, host for a GPU"),
}
LOADS = [f"{p}_AvgPower" for p in range(10, 101, 10)]


def main() -> int:
    d = pd.read_csv(SOURCE, dtype={"hash": str})
    d = d[d["hash"].isin(KEEP)]
    out = pd.DataFrame({
        "spec_hash": d["hash"], "hw_vendor": d["HW_Vendor"], "hw_model": d["HW_Model"], "cpu": d["HW_CPUName"],
        "cores": d["CPUCores"], "chips": d["CPUChips"], "year": d["Hardware_Availability_Year"],
        "active_idle_w": d["ActiveIdle"], **{f"load_{p}_w": d[f"{p}_AvgPower"] for p in range(10, 101, 10)},
        "generation": d["hash"].map(lambda h: KEEP[h][0]), "note": d["hash"].map(lambda h: KEEP[h][1])})
    dest = Path("telemetry/data/specpower_curves.csv")
    out.to_csv(dest, index=False)
    print(f"wrote {len(out)} curves to {dest}")
    return 0 if len(out) == len(KEEP) else 1


if __name__ == "__main__":
    sys.exit(main())
