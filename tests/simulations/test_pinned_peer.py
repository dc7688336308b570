"""keda-tuned-pinned-ca: each workload pinned by a required node affinity on the instance-type label
to the class with the least energy per frame (the next allowed too when that cannot hold its peak),
its trigger target sized for the slowest class pinned; and it is one of the default peers."""

import argparse
import copy

import numpy as np
import pytest

from wattwise.models.admission import Requirement, SelectorOperator, Term
from wattwise.models.eligibility import hard_reason
from wattwise.models.scenario import load_scenario
from wattwise.simulations.cli import add_arguments
from wattwise.simulations.cluster_model import build_cluster_model
from wattwise.simulations.policies import PEERS, POLICY_NAMES, make_policy
from wattwise.simulations.policies.keda_tuned import TARGET_SHARE
from wattwise.simulations.report_style import POLICY_COLORS
from wattwise.simulations.run import simulate
from wattwise.simulations.timing import ControlTiming

from .helpers import write_scenario

PINNED = "keda-tuned-pinned-ca"
LABEL = "node.kubernetes.io/instance-type"
# two classes alike but for AMX: bf16 replicas run 59.2 fps on `fast`, 16 on `slow` (the priors),
# so `fast` takes less energy per frame. cam's peak (20 fps) fits on the one `fast` node; crowd's
# (500 fps: 10 replicas of 2 cores at fast's target) does not, so it may use `slow` too.
SPEC = {
    "name": "pinning",
    "objective": "energy",
    "zones": {"z": {"carbon_g_per_kwh": 200}},
    "node_classes": {
        "fast": {"cores": 10, "memory_gib": 64, "amx": True, "power": {"idle_w": 100, "max_w": 300, "sleep_w": 5}},
        "slow": {"cores": 10, "memory_gib": 64, "power": {"idle_w": 100, "max_w": 300, "sleep_w": 5}},
    },
    "nodes": [{"name_prefix": "f", "class": "fast", "zone": "z", "count": 1},
              {"name_prefix": "s", "class": "slow", "zone": "z", "count": 2}],
    "workloads": [
        {"name": "cam", "model": "classifier-bf16", "streams": 2, "fps_per_stream": 5, "cpu": "2", "memory": "1Gi",
         "max_replicas": 20, "demand_profile": {"peak_streams": 4}},
        {"name": "crowd", "model": "classifier-bf16", "streams": 2, "fps_per_stream": 5, "cpu": "2", "memory": "1Gi",
         "max_replicas": 20, "demand_profile": {"peak_streams": 100}},
    ],
    "simulation": {"days": 1, "step_s": 60},
}
FAST_FPS, SLOW_FPS = 59.2, 16.0


@pytest.fixture
def pinned(tmp_path):
    """(the scenario's model as `simulate` builds it, the policy, the policy's own model)."""
    scenario = load_scenario(write_scenario(tmp_path, SPEC))
    cm = build_cluster_model(scenario.snapshot, gpu_taint=True)
    policy = make_policy(PINNED, scenario, ControlTiming())
    return cm, policy, policy.cluster_model(cm)


def test_scenario_nodes_carry_their_class_as_instance_type(pinned):
    cm, _, _ = pinned
    assert [dict(n.labels)[LABEL] for n in cm.snapshot.nodes] == ["fast", "slow", "slow"]


def test_each_workload_is_pinned_by_required_node_affinity(pinned):
    cm, _, own = pinned
    assert cm.cap_fps[:, 0] == pytest.approx([FAST_FPS] * 2) and cm.cap_fps[:, 1] == pytest.approx([SLOW_FPS] * 2)
    assert cm.eligible.all()                                      # unpinned, both may run anywhere
    cam, crowd = own.snapshot.workloads
    assert cam.placement.required_terms == (Term((Requirement(LABEL, SelectorOperator.IN, ("fast",)),)),)
    assert crowd.placement.required_terms == (Term((Requirement(LABEL, SelectorOperator.IN, ("fast", "slow")),)),)
    # through the core's own filter, as kube-scheduler's NodeAffinity would refuse it
    assert own.eligible.tolist() == [[True, False, False], [True, True, True]]
    slow = own.snapshot.nodes[1]
    reason = hard_reason(cam, slow, own.snapshot.node_classes["slow"], own.snapshot.model(cam, own.snapshot.node_classes["slow"]))
    assert reason is not None and reason.category == "node_affinity"


def test_the_target_is_sized_for_the_class_pinned(pinned):
    _, policy, own = pinned
    tuning = policy.tuning(own)
    assert tuning["targets_fps"] == {"cam": pytest.approx(TARGET_SHARE * FAST_FPS),
                                     "crowd": pytest.approx(TARGET_SHARE * SLOW_FPS)}
    assert tuning["sized_for_class"] == {"cam": "fast", "crowd": "slow"}
    assert tuning["node_affinity"] == {"cam": ["fast"], "crowd": ["fast", "slow"]}
    assert "per-workload class pinning and target" in tuning["scheduler"]


def test_a_peak_that_fits_keeps_one_class(tmp_path):
    spec = copy.deepcopy(SPEC)
    spec["workloads"][1]["demand_profile"]["peak_streams"] = 20     # 100 fps: 2 replicas on `fast`
    scenario = load_scenario(write_scenario(tmp_path, spec))
    policy = make_policy(PINNED, scenario, ControlTiming())
    policy.cluster_model(build_cluster_model(scenario.snapshot, gpu_taint=True))
    assert policy.pinned == [("fast",), ("fast",)]


def test_pods_stay_on_the_pinned_class(tmp_path):
    spec = copy.deepcopy(SPEC)
    spec["workloads"] = [dict(SPEC["workloads"][0], streams=40, max_replicas=40,
                              demand_profile={"peak_streams": 40})]   # 200 fps: 4 replicas on `fast`
    run = simulate(write_scenario(tmp_path, spec), ["keda-tuned-ca", PINNED], days=1 / 24, step_s=60, seed=0)
    on_slow = {name: run.recorders[name].replicas_by_class[:, run.class_names.index("slow")] for name in run.recorders}
    assert np.all(on_slow[PINNED] == 0)
    assert np.any(on_slow["keda-tuned-ca"] > 0)       # sized for `slow`, its 14 replicas spill over
    p = run.summary["policies"][PINNED]
    assert p["sla_attainment"] == pytest.approx(1.0) and p["tuning"]["node_affinity"] == {"cam": ["fast"]}


def test_it_is_a_default_peer_with_its_own_colour():
    assert PINNED in POLICY_NAMES and PINNED in PEERS
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert PINNED in parser.parse_args([]).policies.split(",")
    others = {c for name, c in POLICY_COLORS.items() if name != PINNED}
    assert POLICY_COLORS[PINNED] not in others
