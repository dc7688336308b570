"""The headline: `wattwise` against the best peer that meets the SLA, and how much of the room
down to the oracle it takes.

Peers are the policies other than `wattwise` and `oracle`. A policy meets the SLA when it
processes at least 99.9% of the frames demanded. For energy (kWh) and for carbon (kg CO2) apart,
the best peer is the one meeting the SLA with the least; the headline gives wattwise's ratio to it
and the share of the headroom captured, (peer - wattwise) / (peer - oracle): 1 when wattwise is
as good as the oracle, 0 when no better than the peer, below 0 when worse. What each peer was
given by hand to meet the SLA (trigger targets, taints, scheduler profile, node autoscaler) is
its `tuning` in the summary.
"""

from __future__ import annotations

from wattwise.simulations.policies import PEERS

SLA_TARGET = 0.999
METRICS = (("energy", "energy_kwh", "kWh"), ("carbon", "carbon_kg", "kg CO2"))


def headroom_captured(peer: float, wattwise: float, oracle: float) -> float | None:
    """(peer - wattwise) / (peer - oracle); None when the peer is already at or below the oracle.
    A run without the oracle has no share at all: its metric's `oracle_value` is None."""
    gap = peer - oracle
    if gap <= 0:
        return None
    return (peer - wattwise) / gap


def headline(policies: dict) -> dict:
    peers = [n for n in PEERS if n in policies]
    meeting = [n for n in peers if policies[n]["sla_attainment"] >= SLA_TARGET]
    out: dict = {"sla_target": SLA_TARGET, "peers_meeting_sla": meeting,
                 "peers_missing_sla": {n: policies[n]["sla_attainment"] for n in peers if n not in meeting}}
    ww = policies.get("wattwise")
    if ww is not None:
        out["wattwise_sla"] = ww["sla_attainment"]
        out["wattwise_meets_sla"] = ww["sla_attainment"] >= SLA_TARGET
    for label, key, unit in METRICS:
        if ww is None or not meeting:
            out[label] = None
            continue
        peer = min(meeting, key=lambda n: policies[n][key])
        value = policies[peer][key]
        oracle = policies["oracle"][key] if "oracle" in policies else None
        out[label] = {"peer": peer, "unit": unit, "peer_value": value, "wattwise_value": ww[key],
                      "oracle_value": oracle, "wattwise_vs_peer": ww[key] / value if value else float("nan"),
                      "headroom_captured": None if oracle is None else headroom_captured(value, ww[key], oracle)}
    out["peers_were_given"] = {n: policies[n].get("tuning", {}) for n in meeting}
    if ww is not None:
        out["wattwise_was_given"] = ww.get("tuning", {})
    return out


def _share(metric: dict) -> str:
    if metric["oracle_value"] is None:
        return "n/a (no oracle in this run)"
    x = metric["headroom_captured"]
    return "n/a (the peer is at the oracle)" if x is None else f"{x:.0%}"


def format_headline(h: dict) -> list[str]:
    """The lines printed above the table."""
    target = f"{h['sla_target']:.1%}"
    if not h["peers_meeting_sla"] and not h["peers_missing_sla"]:
        return ["No peer was simulated: nothing to compare wattwise with."]
    if not h["peers_meeting_sla"]:
        return [f"No peer met the SLA (>= {target} of frames): nothing to compare wattwise with."]
    if h.get("energy") is None:
        return [f"Peers meeting the SLA (>= {target} of frames): {', '.join(h['peers_meeting_sla'])}."]
    missed = not h.get("wattwise_meets_sla", True)
    lines = [f"wattwise missed the SLA ({h['wattwise_sla']:.3%} < {target})."] if missed else []
    parts = []
    for label in ("energy", "carbon"):
        m = h[label]
        oracle = "" if m["oracle_value"] is None else f", oracle {m['oracle_value']:.2f}"
        captured = "" if missed else f", headroom captured {_share(m)}"
        parts.append(f"{label} {m['wattwise_vs_peer']:.3f}x {m['peer']} ({m['wattwise_value']:.2f} vs "
                     f"{m['peer_value']:.2f} {m['unit']}{oracle}){captured}")
    lines.append(f"wattwise vs the best peer meeting the SLA (>= {target} of frames): " + "; ".join(parts) + ".")
    without = "" if missed else "; wattwise meets the SLA without it"
    lines.append("What each peer meeting the SLA was given by hand that wattwise was not (the GPU taint is on every "
                 f"policy's nodes{without}, docs/simulate.md):")
    ours = h.get("wattwise_was_given") or {}
    for name, tuning in h["peers_were_given"].items():
        parts = [text for k, v in tuning.items() if not _given_too(k, v, ours) and (text := _tuning_text(k, v))]
        lines.append(f"  {name}: " + "; ".join(parts))
    missing = h["peers_missing_sla"]
    if missing:
        lines.append("Missing the SLA: " + ", ".join(f"{n} {v:.2%}" for n, v in missing.items()) + ".")
    return lines


def _given_too(key: str, value, ours: dict) -> bool:
    """What wattwise was given as well, so no difference: the same node autoscaler or scheduler,
    or a preStop grace (each policy's is its own workloads' longest start-up)."""
    return key in ours and (key == "eviction_grace_s" or ours[key] == value)


def _tuning_text(key: str, value) -> str | None:
    if key == "targets_fps":
        return "trigger targets " + ", ".join(f"{w} {t:g}" for w, t in value.items()) + " fps/replica"
    if key == "eviction_grace_s":
        return f"preStop grace on evicted pods until replacements are ready (up to {max(value.values()):g} s)"
    if key == "taint":
        return "the GPU taint"
    if key == "node_autoscaler" and str(value).startswith("none"):
        return None            # keeping every node on is nothing the peer was given
    if key in ("scheduler", "node_autoscaler", "zones"):
        return str(value)
    return None
