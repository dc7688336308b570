"""The recorder's per-workload figures: frames add up to the totals, and the energy shared among the
workloads (by each pod's share of its node's CPU) plus the nodes without pods is the total."""

import pytest

from .report_fixture import run_and_report


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    result, _, _ = run_and_report(tmp_path_factory.mktemp("per-workload"))
    return result.summary


def test_per_workload_figures_add_up(summary):
    for name, s in summary["policies"].items():
        bw = s["by_workload"]
        assert set(bw) == {"default/cam", "default/door"}, name
        assert sum(w["frames_demanded"] for w in bw.values()) == pytest.approx(s["frames_demanded"])
        assert sum(w["frames_processed"] for w in bw.values()) == pytest.approx(s["frames_processed"])
        shared = sum(w["energy_kwh"] for w in bw.values()) + s["energy_kwh_without_pods"]
        assert shared == pytest.approx(s["energy_kwh"], rel=1e-9), name
        assert all(w["energy_kwh"] > 0 and 0 <= w["sla_attainment"] <= 1 for w in bw.values()), name
        assert s["energy_kwh_without_pods"] >= 0


def test_a_workload_with_twice_the_streams_gets_more_energy(summary):
    bw = summary["policies"]["keda-tuned"]["by_workload"]
    assert bw["default/cam"]["frames_demanded"] == pytest.approx(2 * bw["default/door"]["frames_demanded"])
    assert bw["default/cam"]["energy_kwh"] > bw["default/door"]["energy_kwh"]
