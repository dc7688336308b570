"""The pure answer layer: both numeric fields, ceilings, never a zero target."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, strategies as st

from wattwise.scaler.answer import as_target, as_value, metric_spec


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_value_is_finite_non_negative_and_int_is_its_ceiling(x):
    n = as_value(x)
    assert math.isfinite(n.as_float) and n.as_float >= 0
    assert n.as_int == math.ceil(n.as_float)
    assert n.as_float == round(n.as_float, 3)


@given(st.floats(min_value=1e-6, max_value=1e9))
def test_target_is_positive_and_int_never_zero(x):
    n = as_target(x)
    assert n.as_float > 0 and n.as_int >= 1 and n.as_int == max(1, math.ceil(n.as_float))


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf])
def test_zero_negative_or_non_finite_target_is_refused(bad):
    with pytest.raises(ValueError):
        as_target(bad)


def test_integer_replicas_keep_exact_values():
    assert as_value(37.0) == as_value(37)
    assert (as_value(37.0).as_float, as_value(37.0).as_int) == (37.0, 37)
    assert (as_value(2.0001).as_float, as_value(2.0001).as_int) == (2.0, 2)
    assert (as_value(2.4).as_float, as_value(2.4).as_int) == (2.4, 3)


def test_spec_is_average_value_target_one():
    from wattwise.scaler.metadata import parse_metadata

    spec = metric_spec(parse_metadata("so", "ns", {"workload": "w", "streams": "1"}))
    assert spec.metric_name == "wattwise-ns-w"
    assert (spec.target.as_float, spec.target.as_int) == (1.0, 1)
