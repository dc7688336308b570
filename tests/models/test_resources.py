"""Kubernetes quantities to integer units: bounded as Kubernetes bounds them."""

from __future__ import annotations

import pytest

from wattwise.models.errors import InvalidInputError
from wattwise.models.resources import MAX_QUANTITY_UNITS, parse_cpu_m, parse_memory_mib


@pytest.mark.parametrize("value, cpu_m", [("4", 4000), ("500m", 500), (2.5, 2500), ("9000000000000000000m", 9 * 10 ** 18)])
def test_cpu_quantities(value, cpu_m):
    assert parse_cpu_m(value) == cpu_m


@pytest.mark.parametrize("value, mib", [("8Gi", 8192), ("512Mi", 512), ("1048576", 1), ("7Ti", 7 << 20)])
def test_memory_quantities(value, mib):
    assert parse_memory_mib(value) == mib


@pytest.mark.parametrize("parse, value", [
    # found by tests/fuzz: hundreds of digits overflowed the float: OverflowError (CPU), NaN -> ValueError (memory)
    (parse_cpu_m, "1" + "0" * 400), (parse_cpu_m, "9" * 400 + "m"), (parse_memory_mib, "1" + "0" * 400 + "Ki"),
    (parse_cpu_m, str(MAX_QUANTITY_UNITS)), (parse_memory_mib, "8589934592Gi"),
])
def test_a_quantity_past_what_kubernetes_holds_is_invalid_input_naming_the_field(parse, value):
    with pytest.raises(InvalidInputError) as e:
        parse(value, "status.allocatable.x")
    assert str(e.value).startswith("status.allocatable.x: ") and "too large" in str(e.value)
    assert len(str(e.value)) < 200
