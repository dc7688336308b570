"""Carbon across nearby grid zones (scenarios/eu-nearby.yaml): WattWise serves Frankfurt's cameras
from London's cleaner grid within the latency bound; the peers, which kube-scheduler leaves unaware
of where streams come from, serve each region at home; every policy meets the SLA."""

from __future__ import annotations

from pathlib import Path

import pytest

from wattwise.models.scenario import load_scenario
from wattwise.simulations.regional import RULE, served_at_home
from wattwise.simulations.run import simulate

EU = Path(__file__).resolve().parents[2] / "scenarios" / "eu-nearby.yaml"


@pytest.fixture(scope="module")
def run():
    return simulate(EU, ["keda-tuned-ca", "wattwise"], days=0.25, step_s=60, seed=0)


def test_wattwise_moves_frames_to_the_cleaner_zone_and_the_peer_serves_at_home(run):
    p = run.summary["policies"]
    for name in ("keda-tuned-ca", "wattwise"):
        assert p[name]["sla_attainment"] >= 0.999 and p[name]["confidentiality_violations"] == 0, name
    share = {n: p[n]["energy_kwh_by_zone"]["eu-west-2a"] / p[n]["energy_kwh"] for n in p}
    assert share["wattwise"] > 0.6 > share["keda-tuned-ca"]
    assert p["wattwise"]["carbon_mg_per_frame"] < 0.97 * p["keda-tuned-ca"]["carbon_mg_per_frame"]
    assert p["keda-tuned-ca"]["tuning"]["zones"] == RULE and "zones" not in p["wattwise"].get("tuning", {})


def test_the_peers_model_cuts_reach_to_the_home_zone():
    snap = served_at_home(load_scenario(EU).snapshot)
    for w in snap.workloads:
        assert w.reach is not None and w.reach.rtt_to(w.reach.origin_zone) == 0
        assert all(w.reach.rtt_to(z) is None for z in ("eu-central-1a", "eu-west-2a") if z != w.reach.origin_zone)
