"""Short runs on the bundled scenario: determinism, TEE constraints, the oracle bound."""

import numpy as np
import pytest

from wattwise.simulations.policies import POLICY_NAMES, make_policy
from wattwise.simulations.policies.default import DefaultPolicy
from wattwise.simulations.run import simulate

from .conftest import SCENARIO

HOURS = 0.5


class BrokenPolicy(DefaultPolicy):
    """Ignores TEE requirements: any node with a model for the workload will do."""

    name = "broken"

    def allowed(self, ctx, w):
        return ctx.cm.cap_fps[w] > 0


def _factory(name, scenario, timing):
    return BrokenPolicy(scenario, timing) if name == "broken" else make_policy(name, scenario, timing)


@pytest.fixture(scope="module")
def short_run():
    return simulate(SCENARIO, list(POLICY_NAMES), days=HOURS / 24, step_s=15, seed=3)


def test_no_real_policy_violates_confidentiality(short_run):
    for name, s in short_run.summary["policies"].items():
        assert s["confidentiality_violations"] == 0, name


def test_no_policy_puts_a_pod_on_a_node_whose_taint_it_does_not_tolerate(short_run):
    assert set(short_run.summary["policies"]) == set(POLICY_NAMES)
    for name, s in short_run.summary["policies"].items():
        assert s["taint_violations"] == 0, name


def test_a_broken_policy_shows_violations():
    result = simulate(SCENARIO, ["broken"], days=HOURS / 24, step_s=15, seed=3, policy_factory=_factory)
    assert result.summary["policies"]["broken"]["confidentiality_violations"] > 0


def test_oracle_uses_no_more_energy_than_wattwise(short_run):
    p = short_run.summary["policies"]
    assert p["oracle"]["energy_kwh"] <= p["wattwise"]["energy_kwh"]
    assert p["oracle"]["sla_attainment"] == pytest.approx(1.0)


def test_frames_are_conserved(short_run):
    for s in short_run.summary["policies"].values():
        assert s["frames_processed"] + s["dropped_frames"] == pytest.approx(s["frames_demanded"])
        assert 0 <= s["sla_attainment"] <= 1


def test_same_seed_same_result():
    a = simulate(SCENARIO, ["default", "peaks"], days=0.5 / 24, step_s=15, seed=7)
    b = simulate(SCENARIO, ["default", "peaks"], days=0.5 / 24, step_s=15, seed=7)
    assert a.summary["policies"] == b.summary["policies"]
    for name in a.recorders:
        assert np.array_equal(a.recorders[name].series()["power_w"], b.recorders[name].series()["power_w"])
