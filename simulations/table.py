"""The summary as a fixed-width table, led by the headline (`headline.py`): each policy's energy and
carbon relative to the best peer that meets the SLA, then its figures and its energy relative to
`oracle`."""

from __future__ import annotations

from wattwise.simulations.headline import format_headline

COLUMNS = (("sla_attainment", "SLA", ".3%"), ("energy_kwh", "energy kWh", ".2f"), ("carbon_kg", "carbon kg", ".2f"),
           ("energy_j_per_frame", "J/frame", ".3f"), ("carbon_mg_per_frame", "mgCO2/frame", ".3f"),
           ("dropped_frames", "dropped", ".0f"), ("replica_hours", "replica-h", ".0f"),
           ("scaling_events", "scalings", "d"), ("node_wakes", "node wakes", "d"),
           ("confidentiality_violations", "TEE viol.", ".0f"), ("taint_violations", "taint viol.", ".0f"))


def ratios(policies: dict, name: str, ref: str) -> dict | None:
    if ref not in policies:
        return None
    a, b = policies[name], policies[ref]
    out = {}
    for key in ("energy_j_per_frame", "carbon_mg_per_frame", "energy_kwh", "carbon_kg"):
        out[key] = a[key] / b[key] if b[key] else float("nan")
    return out


def rows(summary: dict) -> list[list[str]]:
    pol = summary["policies"]
    head = summary.get("headline") or {}
    peers = {label: (head.get(label) or {}).get("peer") for label in ("energy", "carbon")}
    header = (["policy", f"kWh vs {peers['energy'] or 'best peer'}", f"CO2 vs {peers['carbon'] or 'best peer'}"]
              + [c[1] for c in COLUMNS] + ["kWh vs oracle"])
    out = [header]
    for name, s in pol.items():
        vs_e = ratios(pol, name, peers["energy"]) if peers["energy"] else None
        vs_c = ratios(pol, name, peers["carbon"]) if peers["carbon"] else None
        vs_o = ratios(pol, name, "oracle")
        out.append([name, f"{vs_e['energy_kwh']:.3f}x" if vs_e else "-", f"{vs_c['carbon_kg']:.3f}x" if vs_c else "-"]
                   + [format(s.get(k, 0), f) for k, _, f in COLUMNS]
                   + [f"{vs_o['energy_kwh']:.2f}x" if vs_o else "-"])
    return out


def format_table(summary: dict) -> str:
    table = rows(summary)
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    head = summary.get("headline")
    return "\n".join((format_headline(head) + [""] if head else []) + lines)
