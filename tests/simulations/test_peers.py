"""The peers a skeptic would pick: they meet the SLA, GPU taints keep CPU pods off GPU nodes for
every policy, and the headline's arithmetic."""

import numpy as np
import pytest

from wattwise.models.eligibility import hard_reason
from wattwise.models.scenario import load_scenario
from wattwise.simulations.cluster_model import GPU_TAINT, GPU_TOLERATION, build_cluster_model
from wattwise.simulations.cluster_autoscaler import CaSettings
from wattwise.simulations.headline import SLA_TARGET, format_headline, headline, headroom_captured
from wattwise.simulations.policies import make_policy
from wattwise.simulations.policies.default import DefaultPolicy
from wattwise.simulations.policies.keda_tuned import TARGET_SHARE, slowest_targets
from wattwise.simulations.run import simulate
from wattwise.simulations.table import format_table

from .conftest import SCENARIO

NEW_PEERS = ["keda-tuned", "keda-tuned-ca", "keda-tuned-karpenter"]


@pytest.fixture(scope="module")
def cm():
    return build_cluster_model(load_scenario(SCENARIO).snapshot, gpu_taint=True)   # as `simulate` builds it


@pytest.fixture(scope="module")
def peers_run():
    return simulate(SCENARIO, NEW_PEERS, days=0.5, step_s=60, seed=0)


def test_the_new_peers_meet_the_sla(peers_run):
    p = peers_run.summary["policies"]
    for name in NEW_PEERS:
        assert p[name]["sla_attainment"] >= SLA_TARGET, name
        assert p[name]["confidentiality_violations"] == 0 and p[name]["taint_violations"] == 0, name
    # the node autoscalers did power nodes down, and that is where their energy goes
    assert p["keda-tuned-ca"]["node_removals"] > 0 and p["keda-tuned-karpenter"]["node_deletions"] > 0
    assert p["keda-tuned-ca"]["energy_kwh"] < 0.7 * p["keda-tuned"]["energy_kwh"]
    assert p["keda-tuned-karpenter"]["energy_kwh"] < 0.7 * p["keda-tuned"]["energy_kwh"]


def test_the_trigger_target_is_sized_for_the_slowest_class(cm):
    targets, classes = slowest_targets(cm)
    names = [w.name for w in cm.snapshot.workloads]
    for w in range(len(names)):
        assert targets[w] == pytest.approx(TARGET_SHARE * cm.cap_fps[w][cm.eligible[w]].min())
    # parking-lpr may land on TDX or SEV-SNP CPU nodes (not the SEV-SNP GPU nodes: tainted)
    assert classes[names.index("parking-lpr")] == "milan-snp"
    assert classes[names.index("city-traffic")] == "h100-cc"


def test_gpu_nodes_are_tainted_and_only_gpu_pods_tolerate_it(cm):
    snap = cm.snapshot
    gpu_nodes = cm.alloc_gpu > 0
    assert gpu_nodes.any() and (~gpu_nodes).any()
    for n, node in enumerate(snap.nodes):
        assert (GPU_TAINT in node.taints) == bool(gpu_nodes[n])
    for w, wl in enumerate(snap.workloads):
        assert (GPU_TOLERATION in wl.placement.tolerations) == wl.needs_gpu
        if not wl.needs_gpu:
            assert not cm.eligible[w][gpu_nodes].any() and not cm.admitted[w][gpu_nodes].any(), wl.name
    # the core's own rule says why, so the planner (wattwise, oracle) keeps to it too
    footfall = next(w for w in snap.workloads if w.name == "footfall-counter")
    h100 = next(n for n in snap.nodes if n.node_class == "h100-cc")
    reason = hard_reason(footfall, h100, snap.node_classes["h100-cc"], snap.model(footfall, snap.node_classes["h100-cc"]))
    assert reason is not None and reason.category == "taint"


def test_without_the_taint_cpu_pods_may_land_on_gpu_nodes():
    untainted = build_cluster_model(load_scenario(SCENARIO).snapshot)
    footfall = [w.name for w in untainted.snapshot.workloads].index("footfall-counter")
    assert untainted.eligible[footfall][untainted.alloc_gpu > 0].all()


class IgnoresTaints(DefaultPolicy):
    """Places pods on any node with a model and an allowed TEE, taints or not."""

    name = "ignores-taints"

    def allowed(self, ctx, w):
        return (ctx.cm.cap_fps[w] > 0) & ctx.cm.tee_ok[w] & (ctx.cm.w_gpu[w] <= ctx.cm.alloc_gpu)


def test_a_policy_ignoring_taints_shows_violations():
    result = simulate(SCENARIO, ["ignores-taints"], days=0.5 / 24, step_s=15, seed=3,
                      policy_factory=lambda n, s, t: IgnoresTaints(s, t) if n == "ignores-taints" else make_policy(n, s, t))
    assert result.summary["policies"]["ignores-taints"]["taint_violations"] > 0


@pytest.mark.parametrize("peer, wattwise, oracle, expected", [
    (100.0, 80.0, 60.0, 0.5),
    (100.0, 60.0, 60.0, 1.0),
    (100.0, 100.0, 60.0, 0.0),
    (100.0, 110.0, 60.0, -0.25),     # worse than the peer
    (60.0, 55.0, 60.0, None),        # the peer is at the oracle: nothing to capture
])
def test_headroom_captured(peer, wattwise, oracle, expected):
    got = headroom_captured(peer, wattwise, oracle)
    assert got == expected if expected is None else got == pytest.approx(expected)


def _policy(kwh, kg, sla, **extra):
    return {"energy_kwh": kwh, "carbon_kg": kg, "sla_attainment": sla, **extra}


def test_headline_compares_with_the_best_peer_meeting_the_sla_per_metric():
    policies = {
        "default": _policy(50.0, 5.0, 0.90),                          # cheapest, but misses the SLA
        "keda-tuned": _policy(120.0, 9.0, 0.9995),
        "keda-tuned-ca": _policy(100.0, 12.0, 0.9991, tuning={"taint": "GPU taint"}),
        "keda-tuned-karpenter": _policy(105.0, 10.0, 0.99899),       # just below 99.9%
        "wattwise": _policy(90.0, 7.0, 0.9992),
        "oracle": _policy(80.0, 5.0, 1.0),
    }
    h = headline(policies)
    assert h["peers_meeting_sla"] == ["keda-tuned", "keda-tuned-ca"]
    assert set(h["peers_missing_sla"]) == {"default", "keda-tuned-karpenter"}
    assert h["energy"]["peer"] == "keda-tuned-ca" and h["carbon"]["peer"] == "keda-tuned"
    assert h["energy"]["wattwise_vs_peer"] == pytest.approx(0.9)
    assert h["energy"]["headroom_captured"] == pytest.approx((100 - 90) / (100 - 80))
    assert h["carbon"]["wattwise_vs_peer"] == pytest.approx(7 / 9)
    assert h["carbon"]["headroom_captured"] == pytest.approx((9 - 7) / (9 - 5))
    assert h["peers_were_given"]["keda-tuned-ca"] == {"taint": "GPU taint"}
    text = "\n".join(format_headline(h))
    assert "0.900x keda-tuned-ca" in text and "headroom captured 50%" in text and "0.778x keda-tuned" in text


def test_what_wattwise_was_given_too_is_not_listed_as_the_peers_advantage():
    """Both run with cluster-autoscaler and a preStop grace: only the trigger targets differ."""
    ca = CaSettings().describe()
    policies = {"keda-tuned-ca": _policy(100.0, 10.0, 0.9995, tuning={
                    "targets_fps": {"cams": 19.6}, "node_autoscaler": ca, "eviction_grace_s": {"cams": 9.0}}),
                "wattwise": _policy(90.0, 9.0, 0.9995, tuning={"node_autoscaler": ca, "eviction_grace_s": {"cams": 5.0}})}
    given = [line for line in format_headline(headline(policies)) if line.startswith("  keda-tuned-ca: ")]
    assert given == ["  keda-tuned-ca: trigger targets cams 19.6 fps/replica"]


def test_keeping_every_node_on_is_not_listed_as_given():
    policies = {"keda-tuned": _policy(100.0, 10.0, 0.9995, tuning={
                    "targets_fps": {"cams": 19.6}, "node_autoscaler": "none: every node stays on"}),
                "wattwise": _policy(90.0, 9.0, 0.9995, tuning={})}
    given = [line for line in format_headline(headline(policies)) if line.startswith("  keda-tuned: ")]
    assert given == ["  keda-tuned: trigger targets cams 19.6 fps/replica"]


def test_headline_without_a_peer_meeting_the_sla():
    h = headline({"default": _policy(50.0, 5.0, 0.9), "wattwise": _policy(40.0, 4.0, 0.9995)})
    assert h["energy"] is None and h["carbon"] is None
    assert "No peer met the SLA" in format_headline(h)[0]


def test_headline_without_any_peer_simulated():
    h = headline({"wattwise": _policy(40.0, 4.0, 0.9995), "oracle": _policy(30.0, 3.0, 1.0)})
    assert format_headline(h) == ["No peer was simulated: nothing to compare wattwise with."]


def test_headline_without_the_oracle_says_so_rather_than_the_peer_at_it():
    h = headline({"keda-tuned": _policy(90.0, 9.0, 0.9995), "wattwise": _policy(80.0, 8.0, 0.9995)})
    assert h["energy"]["oracle_value"] is None and h["energy"]["headroom_captured"] is None
    text = "\n".join(format_headline(h))
    assert "headroom captured n/a (no oracle in this run)" in text and "at the oracle" not in text
    h = headline({"keda-tuned": _policy(90.0, 9.0, 0.9995), "wattwise": _policy(80.0, 8.0, 0.9995),
                  "oracle": _policy(90.0, 9.0, 1.0)})
    assert "headroom captured n/a (the peer is at the oracle)" in "\n".join(format_headline(h))


def test_headline_when_wattwise_misses_the_sla_leads_with_it_and_claims_nothing_it_contradicts():
    h = headline({"keda-tuned": _policy(90.0, 9.0, 0.9995, tuning={"taint": "GPU taint"}),
                  "wattwise": _policy(80.0, 8.0, 0.99582), "oracle": _policy(70.0, 7.0, 1.0)})
    lines = format_headline(h)
    assert lines[0] == "wattwise missed the SLA (99.582% < 99.9%)."
    text = "\n".join(lines)
    assert "0.889x keda-tuned" in text and "headroom captured" not in text
    assert "wattwise meets the SLA" not in text


def test_the_table_leads_with_the_headline(peers_run):
    lines = format_table(peers_run.summary).splitlines()
    assert lines[0].startswith("Peers meeting the SLA") or lines[0].startswith("wattwise vs")
    header = next(line for line in lines if line.startswith("policy"))
    assert header.split()[1:3] == ["kWh", "vs"]
    assert list(peers_run.summary)[0] == "headline"
    assert np.isfinite(peers_run.summary["policies"]["keda-tuned"]["energy_kwh"])
