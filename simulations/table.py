"""The summary as a fixed-width table, with each policy's ratios to `default` and `oracle`."""

from __future__ import annotations

COLUMNS = (("energy_kwh", "energy kWh", ".2f"), ("carbon_kg", "carbon kg", ".2f"),
           ("sla_attainment", "SLA", ".4%"), ("energy_j_per_frame", "J/frame", ".3f"),
           ("carbon_mg_per_frame", "mgCO2/frame", ".3f"), ("dropped_frames", "dropped", ".0f"),
           ("replica_hours", "replica-h", ".0f"), ("scaling_events", "scalings", "d"),
           ("confidentiality_violations", "TEE viol.", ".0f"))


def ratios(policies: dict, name: str, ref: str) -> dict | None:
    if ref not in policies:
        return None
    a, b = policies[name], policies[ref]
    out = {}
    for key in ("energy_j_per_frame", "carbon_mg_per_frame", "energy_kwh"):
        out[key] = a[key] / b[key] if b[key] else float("nan")
    return out


def rows(summary: dict) -> list[list[str]]:
    pol = summary["policies"]
    header = ["policy"] + [c[1] for c in COLUMNS] + ["J/fr vs default", "CO2/fr vs default", "kWh vs oracle"]
    out = [header]
    for name, s in pol.items():
        vs_d = ratios(pol, name, "default")
        vs_o = ratios(pol, name, "oracle")
        out.append([name] + [format(s[k], f) for k, _, f in COLUMNS] + [
            f"{vs_d['energy_j_per_frame']:.2f}x" if vs_d else "-",
            f"{vs_d['carbon_mg_per_frame']:.2f}x" if vs_d else "-",
            f"{vs_o['energy_kwh']:.2f}x" if vs_o else "-"])
    return out


def format_table(summary: dict) -> str:
    table = rows(summary)
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
