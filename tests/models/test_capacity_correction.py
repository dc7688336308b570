"""Capacity learned from drops: replicas dropping frames bound their pair's capacity from above."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from wattwise.models.capacity_correction import (CorrectionSettings, ReplicaRate, apply_corrections, is_saturated,
                                                 lowered_capacities)
from wattwise.models.energy import WorkloadClassModel
from wattwise.models.replica_model import ReplicaPowerModel

DET = ("video/detector", "intel-amx-tdx")
CLS = ("video/classifier", "amd-sev-snp")


def rate(pair, delivered, drop=0.0, requested=None):
    return ReplicaRate(pair[0], pair[1], delivered, drop, requested)


def test_median_of_dropping_replicas_times_margin_lowers_the_capacity():
    """Replicas dropping frames at a median of 24 fps, below 95% of the 32 fps planned: 22.8 fps."""
    out = lowered_capacities({DET: 32.0, CLS: 60.0},
                             [rate(DET, 24.0, 3.0), rate(DET, 26.0, 2.0), rate(DET, 22.0, 4.0),
                              rate(DET, 18.0, 0.0),                     # not dropping: no bound
                              rate(CLS, 59.0, 0.0)])
    assert set(out) == {DET}
    c = out[DET]
    assert c.capacity_fps == pytest.approx(0.95 * 24.0) and c.planned_capacity_fps == 32.0
    assert c.saturated_replicas == 3 and c.median_fps == 24.0
    assert c.reason.category == "capacity_from_drops"
    assert "lowered from 32.0 to 22.8 fps" in c.reason and "3 replica(s)" in c.reason and "\n" not in c.reason


def test_delivering_below_the_requested_rate_is_saturation_too():
    out = lowered_capacities({DET: 32.0}, [rate(DET, 20.0, 0.0, requested=30.0)])
    assert out[DET].capacity_fps == pytest.approx(19.0)
    assert not is_saturated(rate(DET, 29.0, 0.0, requested=30.0))   # within 5% of what it was asked


def test_never_raised_tiny_drops_and_stalled_replicas_ignored():
    assert lowered_capacities({DET: 20.0}, [rate(DET, 30.0, 5.0)]) == {}          # bound above the plan's
    assert lowered_capacities({DET: 32.0}, [rate(DET, 32.0, 6.0)]) == {}          # overloaded at the plan's
    assert lowered_capacities({DET: 32.0}, [rate(DET, 30.5, 6.0, requested=38.0)]) == {}   # within 5% of it
    assert lowered_capacities({DET: 32.0}, [rate(DET, 25.0, 0.5)]) == {}          # 2% drops: noise
    assert lowered_capacities({DET: 32.0}, [rate(DET, 0.0, 25.0)]) == {}          # stalled: says nothing
    assert lowered_capacities({CLS: 60.0}, [rate(DET, 10.0, 5.0)]) == {}          # not in the plan
    assert lowered_capacities({DET: 32.0}, [rate(DET, 25.0, 5.0)], CorrectionSettings(min_replicas=2)) == {}


def test_apply_lowers_the_models_capacity_only():
    m = WorkloadClassModel(*DET, ReplicaPowerModel.from_coefficients(12, 1.6), 32.0, prior=False, source="kepler-0.10")
    out = apply_corrections({DET: m}, lowered_capacities({DET: 32.0}, [rate(DET, 20.0, 5.0)]))
    assert out[DET].capacity_fps == pytest.approx(19.0) and out[DET].source == "kepler-0.10+drops"
    assert out[DET].power is m.power and m.capacity_fps == 32.0


@given(planned=st.floats(1.0, 500.0),
       replicas=st.lists(st.tuples(st.floats(0.0, 600.0), st.floats(0.0, 100.0)), max_size=12))
def test_the_corrected_capacity_is_below_both_the_plan_and_what_dropping_replicas_delivered(planned, replicas):
    rates = [rate(DET, d, x) for d, x in replicas]
    out = lowered_capacities({DET: planned}, rates)
    dropping = sorted(r.delivered_fps for r in rates if is_saturated(r))
    if DET in out:
        c = out[DET]
        assert 0 < c.capacity_fps < planned
        assert c.capacity_fps <= 0.95 * dropping[-1] + 1e-9
        assert c.saturated_replicas == len(dropping) and np.median(dropping) < 0.95 * planned
    else:
        assert not dropping or np.median(dropping) >= 0.95 * planned
