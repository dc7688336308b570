"""A constant load on one node, computed by hand."""

import pytest

from wattwise.simulations.run import simulate

from .helpers import ONE_NODE, write_scenario


def test_constant_load_single_node_energy_by_hand(tmp_path):
    path = write_scenario(tmp_path, ONE_NODE)
    result = simulate(path, ["default"], days=1 / 24, step_s=60)
    s = result.summary["policies"]["default"]
    # classifier-bf16 prior on a non-AMX core: 8 fps per core, 1 core -> 8 fps per replica; 10 fps
    # demanded with max one replica: 8 served, 2 dropped, the replica at full load.
    assert s["frames_demanded"] == pytest.approx(10 * 3600)
    assert s["frames_processed"] == pytest.approx(8 * 3600)
    assert s["sla_attainment"] == pytest.approx(0.8)
    # node: idle 100 W + (300 - 100) W * (1 core / 10 cores) at full load = 120 W for one hour
    assert s["energy_kwh"] == pytest.approx(0.120)
    assert s["carbon_kg"] == pytest.approx(0.120 * 200 / 1000)
    assert s["replica_hours"] == pytest.approx(1.0)
