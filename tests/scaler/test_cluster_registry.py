"""`ClusterRegistry` at the size of a real cluster: 1,000 ScaledObjects, each KEDA call answered
from an index of the source's current workloads (rebuilt when the source has a new result), with
the same answers and messages as a scan of every ScaledObject gave."""

from __future__ import annotations

import pytest

from wattwise.models.cluster_workloads import ClusterWorkloads
from wattwise.models.trigger_metadata import MetadataError, parse_metadata
from wattwise.scaler.cluster_registry import ClusterRegistry

N = 1000


def request(i: int, namespace: str = "cams"):
    return parse_metadata(f"so-{i}", namespace, {"workload": f"cams-{i}", "streams": "8"})


class Source:
    """A `WorkloadSource` whose result the test swaps, as the cluster's watches do."""

    def __init__(self, requests=(), left_out=(), synced=True):
        self.synced = synced
        self.calls = 0
        self.set(requests, left_out)

    def set(self, requests, left_out=()) -> None:
        self.result = ClusterWorkloads(tuple(requests), {}, tuple(left_out))

    def current(self) -> ClusterWorkloads:
        self.calls += 1
        return self.result

    def subscribe(self, fn) -> None:
        pass


def test_every_one_of_1000_scaled_objects_is_answered_and_counted():
    requests = [request(i) for i in range(N)]
    registry = ClusterRegistry(Source(requests))
    assert len(registry) == N
    for r in requests:                         # a KEDA call never changes what gets planned here
        assert registry.touch(r) is False
    assert [r.workload_key for r in registry.active()] == sorted(r.workload_key for r in requests)


def test_a_call_for_a_workload_no_scaled_object_asks_for_is_refused():
    registry = ClusterRegistry(Source([request(i) for i in range(N)]))
    with pytest.raises(MetadataError, match="no ScaledObject in the cluster asks this scaler for workload cams/cams-1000"):
        registry.touch(request(N))
    with pytest.raises(MetadataError, match="not known yet"):
        ClusterRegistry(Source([], synced=False)).touch(request(0))


def test_a_left_out_scaled_object_is_refused_with_its_first_reason():
    source = Source([request(i) for i in range(N - 1)],
                    left_out=[("cams/so-999", "its scaleTargetRef names no Deployment or StatefulSet"),
                              ("cams/so-999", "a second reason"), ("cams/so-7", "")])
    registry = ClusterRegistry(source)
    with pytest.raises(MetadataError, match="ScaledObject cams/so-999 is left out of the plan: its scaleTargetRef"):
        registry.touch(request(999))
    assert registry.touch(request(7)) is False      # planned: a left-out entry for it changes nothing


def test_the_index_follows_the_source_a_deleted_scaled_object_is_refused_and_forgotten():
    requests = [request(i) for i in range(N)]
    source = Source(requests)
    registry = ClusterRegistry(source)
    forgotten = []
    registry.on_forget(lambda r, gone: forgotten.append((r.workload_key, gone)))
    assert registry.active() and registry.touch(requests[500]) is False

    source.set(requests[:500] + requests[501:])      # ScaledObject so-500 deleted
    with pytest.raises(MetadataError, match="cams/cams-500"):
        registry.touch(requests[500])
    assert len(registry) == N - 1
    registry.active()
    assert forgotten == [("cams/cams-500", True)]

    source.set(requests + [request(N)])               # and a new one listed
    assert registry.touch(request(N)) is False
    assert registry.touch(requests[500]) is False
    assert len(registry) == N + 1


def test_calls_for_one_result_read_the_source_once_each_and_index_it_once():
    source = Source([request(i) for i in range(N)])
    registry = ClusterRegistry(source)
    registry.touch(request(0))
    index = registry._index
    for i in range(N):
        registry.touch(request(i))
    assert registry._index is index                  # not rebuilt while the source's result is the same
    source.set([request(i) for i in range(N)])
    registry.touch(request(0))
    assert registry._index is not index
