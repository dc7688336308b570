"""The report's first sentence, from `summary["headline"]` (`headline.py`): WattWise's energy and
carbon per frame against the best peer meeting the SLA, its SLA, and the share of the possible
saving (down to the oracle) it captured. Says "more" when WattWise used more, and says so when no
peer met the SLA. When WattWise itself missed the SLA, that leads, and the comparison follows
without a share of the saving: savings bought with dropped frames are not a result."""

from __future__ import annotations


def _change(ratio: float, what: str) -> str:
    """'3.1% less energy', '2.0% more carbon', 'the same energy'."""
    pct = (ratio - 1.0) * 100.0
    if round(abs(pct), 1) == 0:
        return f"the same {what}"
    return f"{abs(pct):.1f}% {'less' if pct < 0 else 'more'} {what}"


def _per_frame_ratio(policies: dict, peer: str, key: str) -> float:
    mine, theirs = policies["wattwise"][key], policies[peer][key]
    return mine / theirs if theirs else float("nan")


def _saving_captured(energy: dict, carbon: dict) -> str:
    """', capturing 60% of the possible energy saving and ...', or, in a run without the oracle, which
    the share is measured against, that there is none."""
    if energy["oracle_value"] is None or carbon["oracle_value"] is None:
        return " (the oracle was not run, so there is no share of the possible saving)"
    return (f", {_captured(energy['headroom_captured'], 'energy')} "
            f"and {_captured(carbon['headroom_captured'], 'carbon').removeprefix('capturing ')}")


def _captured(share: float | None, what: str) -> str:
    if share is None:
        return f"with no {what} saving left to capture (the peer is already at the oracle)"
    if round(share * 100) <= 0:   # a share that prints as 0% or less is none
        more = f" (it used {-share:.0%} of that gap more than the peer)" if round(-share * 100) > 0 else ""
        return f"capturing none of the possible {what} saving{more}"
    if share > 1:   # below the oracle, which is a near-lower bound (it sizes for each 15 minutes' peak)
        return f"capturing {share:.0%} of the possible {what} saving (below the oracle's, a near-lower bound)"
    return f"capturing {share:.0%} of the possible {what} saving"


def headline_sentence(summary: dict) -> str:
    """One sentence. The ratios are per frame processed (J/frame, mgCO2/frame); the share of the
    possible saving is the headline's, on totals: (peer - wattwise) / (peer - oracle)."""
    h = summary.get("headline") or {}
    policies = summary["policies"]
    target = f"{h.get('sla_target', 0.999):.1%}"
    if "wattwise" not in policies:
        return "WattWise was not simulated in this run: there is nothing to compare it with."
    sla = f"{h['wattwise_sla']:.3%}"
    missed = "" if h.get("wattwise_meets_sla", True) else f" (below the {target} target)"
    if not h.get("peers_meeting_sla") and not h.get("peers_missing_sla"):
        return (f"No peer was simulated in this run, so there is nothing to compare WattWise with: it processed "
                f"{sla} of frames{missed}.")
    if not h.get("peers_meeting_sla"):
        return (f"No peer met the SLA (at least {target} of frames processed), so there is no fair comparison: "
                f"WattWise processed {sla} of frames{missed}.")
    compared = _compared(policies, h["energy"], h["carbon"])
    if not h.get("wattwise_meets_sla", True):
        return f"WattWise missed the SLA ({sla} < {target}); it used {compared}."
    return f"WattWise used {compared}, at {sla} SLA{_saving_captured(h['energy'], h['carbon'])}."


def _compared(policies: dict, energy: dict, carbon: dict) -> str:
    """'3.0% less energy and 2.0% less carbon per frame than keda-tuned, the best peer meeting the SLA';
    'the same ... as' where a change rounds to none."""
    e_text = _change(_per_frame_ratio(policies, energy["peer"], "energy_j_per_frame"), "energy")
    c_text = _change(_per_frame_ratio(policies, carbon["peer"], "carbon_mg_per_frame"), "carbon")
    peer = energy["peer"]
    if peer != carbon["peer"]:
        return (f"{_against(e_text, peer)} and {_against(c_text, carbon['peer'])}, "
                f"the best peers meeting the SLA on each")
    if _same(e_text) and _same(c_text):
        both = _against("the same energy and carbon", peer)
    elif _same(e_text) or _same(c_text):
        both = f"{_against(e_text, peer)} and {_against(c_text, peer)}"
    else:
        both = _against(f"{e_text} and {c_text}", peer)
    return f"{both}, the best peer meeting the SLA"


def _same(change: str) -> bool:
    return change.startswith("the same ")


def _against(change: str, peer: str) -> str:
    """'3.0% less energy per frame than keda-tuned', 'the same energy per frame as keda-tuned'."""
    return f"{change} per frame {'as' if _same(change) else 'than'} {peer}"
