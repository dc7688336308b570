"""The report's first sentence for known summaries: less and more, one peer or two, none meeting
the SLA, WattWise missing it."""

from wattwise.simulations.headline import headline
from wattwise.simulations.report_headline import headline_sentence


def _policy(kwh: float, kg: float, sla: float, frames: float = 1e6) -> dict:
    processed = frames * sla
    return {"energy_kwh": kwh, "carbon_kg": kg, "sla_attainment": sla, "frames_demanded": frames,
            "frames_processed": processed, "energy_j_per_frame": kwh * 3.6e6 / processed,
            "carbon_mg_per_frame": kg * 1e6 / processed}


def _summary(policies: dict) -> dict:
    return {"headline": headline(policies), "policies": policies}


def test_wattwise_using_less_than_the_best_peer():
    s = _summary({"default": _policy(900, 200, 0.877), "keda-tuned-ca": _policy(400, 90, 0.9995),
                  "keda-tuned": _policy(850, 190, 0.9998), "wattwise": _policy(388, 88.2, 0.9995),
                  "oracle": _policy(380, 87, 1.0)})
    assert headline_sentence(s) == (
        "WattWise used 3.0% less energy and 2.0% less carbon per frame than keda-tuned-ca, the best peer meeting "
        "the SLA, at 99.950% SLA, capturing 60% of the possible energy saving and 60% of the possible carbon saving.")


def test_per_frame_not_totals():
    """Same energy in total, but wattwise processed more frames: less energy per frame."""
    s = _summary({"keda-tuned": _policy(100, 10, 0.999), "wattwise": _policy(100, 10, 1.0),
                  "oracle": _policy(90, 9, 1.0)})
    assert headline_sentence(s).startswith("WattWise used 0.1% less energy and 0.1% less carbon per frame than "
                                           "keda-tuned,")


def test_more_is_said_as_more():
    s = _summary({"keda-tuned-karpenter": _policy(100, 20, 0.9995), "wattwise": _policy(103, 19.6, 0.9995),
                  "oracle": _policy(98, 19, 1.0)})
    assert headline_sentence(s) == (
        "WattWise used 3.0% more energy and 2.0% less carbon per frame than keda-tuned-karpenter, the best peer "
        "meeting the SLA, at 99.950% SLA, capturing none of the possible energy saving (it used 150% of that gap "
        "more than the peer) and 40% of the possible carbon saving.")


def test_different_best_peers_for_energy_and_carbon():
    s = _summary({"keda-tuned-ca": _policy(100, 21, 1.0), "keda-tuned-karpenter": _policy(101, 20, 1.0),
                  "wattwise": _policy(99, 19.9, 1.0), "oracle": _policy(98, 19.8, 1.0)})
    text = headline_sentence(s)
    assert text.startswith("WattWise used 1.0% less energy per frame than keda-tuned-ca and 0.5% less carbon per "
                           "frame than keda-tuned-karpenter, the best peers meeting the SLA on each, at 100.000% SLA")
    assert text.endswith("capturing 50% of the possible energy saving and 50% of the possible carbon saving.")


def test_no_peer_meets_the_sla():
    s = _summary({"default": _policy(900, 200, 0.877), "wattwise": _policy(400, 90, 0.9993),
                  "oracle": _policy(380, 87, 1.0)})
    assert headline_sentence(s) == ("No peer met the SLA (at least 99.9% of frames processed), so there is no fair "
                                    "comparison: WattWise processed 99.930% of frames.")


def test_no_peer_simulated_is_not_said_as_none_meeting_the_sla():
    s = _summary({"wattwise": _policy(80, 30, 0.9993), "oracle": _policy(70, 25, 1.0)})
    assert headline_sentence(s) == ("No peer was simulated in this run, so there is nothing to compare WattWise "
                                    "with: it processed 99.930% of frames.")


def test_wattwise_missing_the_sla_leads_and_no_share_of_the_saving_is_claimed():
    s = _summary({"keda-tuned": _policy(100, 10, 0.9995), "wattwise": _policy(90, 9, 0.99582),
                  "oracle": _policy(80, 8, 1.0)})
    assert headline_sentence(s) == (
        "WattWise missed the SLA (99.582% < 99.9%); it used 9.7% less energy and 9.7% less carbon per frame than "
        "keda-tuned, the best peer meeting the SLA.")


def test_below_the_oracle_and_no_wattwise():
    s = _summary({"keda-tuned": _policy(100, 10, 1.0), "wattwise": _policy(89, 9.5, 1.0),
                  "oracle": _policy(90, 9, 1.0)})
    assert "capturing 110% of the possible energy saving (below the oracle's, a near-lower bound)" in \
        headline_sentence(s)
    s = _summary({"keda-tuned": _policy(100, 10, 1.0), "oracle": _policy(90, 9, 1.0)})
    assert headline_sentence(s) == "WattWise was not simulated in this run: there is nothing to compare it with."


def test_a_run_without_the_oracle_has_no_share_rather_than_a_peer_at_the_oracle():
    s = _summary({"keda-tuned": _policy(90, 35, 0.9992), "wattwise": _policy(80, 30, 0.9993)})
    text = headline_sentence(s)
    assert text.endswith("at 99.930% SLA (the oracle was not run, so there is no share of the possible saving).")
    assert "already at the oracle" not in text


def test_a_peer_at_the_oracle_is_said():
    s = _summary({"keda-tuned": _policy(70, 25, 0.9992), "wattwise": _policy(72, 26, 0.9995),
                  "oracle": _policy(70, 25, 1.0)})
    assert "with no energy saving left to capture (the peer is already at the oracle)" in headline_sentence(s)


def test_the_same_per_frame_is_as_and_a_share_printing_as_0_is_none():
    s = _summary({"default": _policy(100.00, 40, 0.9999), "keda-tuned": _policy(99.95, 40, 0.9990),
                  "wattwise": _policy(99.97, 40, 0.9993), "oracle": _policy(70, 25, 1.0)})
    assert headline_sentence(s) == (
        "WattWise used the same energy per frame as keda-tuned and 0.1% more carbon per frame than default, the "
        "best peers meeting the SLA on each, at 99.930% SLA, capturing none of the possible energy saving and "
        "none of the possible carbon saving.")
    s = _summary({"keda-tuned": _policy(100, 10, 0.9995), "wattwise": _policy(100, 10, 0.9995),
                  "oracle": _policy(90, 9, 1.0)})
    assert headline_sentence(s).startswith("WattWise used the same energy and carbon per frame as keda-tuned, the "
                                           "best peer meeting the SLA,")
