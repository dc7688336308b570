"""Hardware priors: what a (workload, node class) pair is planned with before it has data."""

import pytest


def test_the_tee_overhead_of_a_workload_allowing_several_tees_is_the_worst_it_may_get():
    """"tdx or sgx" on a class with both: the pod may run under either, so capacity is planned with
    SGX's 10%, not TDX's 8% (an optimistic prior under-provisions)."""
    from wattwise.models.priors import TEE_OVERHEAD, tee_overhead
    from wattwise.models.tee import Confidentiality, TeeKind
    from wattwise.models.workload import Workload

    from tests.models.builders import node_class

    both = node_class("spr", amx=True, cores=64, tees=(TeeKind.TDX, TeeKind.SGX))
    either = Workload("w", confidentiality=Confidentiality(frozenset({frozenset({TeeKind.TDX}),
                                                                      frozenset({TeeKind.SGX})})))
    assert tee_overhead(either, both) == pytest.approx(TEE_OVERHEAD[TeeKind.SGX]) and TEE_OVERHEAD[TeeKind.SGX] == 0.10
