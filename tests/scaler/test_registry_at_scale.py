"""`Registry` (the workloads KEDA calls about) with 1,000 ScaledObjects: each call registers or
refreshes one entry, entries expire `ttl_s` after their last call, and what expires is passed on."""

from __future__ import annotations

from wattwise.models.trigger_metadata import parse_metadata
from wattwise.scaler.registry import Registry

N = 1000


def request(i: int, streams: int = 8):
    return parse_metadata(f"so-{i}", "cams", {"workload": f"cams-{i}", "streams": str(streams)})


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_1000_calls_register_1000_workloads_once_each():
    clock = Clock()
    registry = Registry(clock, ttl_s=600)
    changes = []
    registry.on_change(lambda: changes.append(1))
    requests = [request(i) for i in range(N)]
    assert all(registry.touch(r) for r in requests)          # new: each changes what gets planned
    assert not any(registry.touch(r) for r in requests)      # again: none does
    assert len(registry) == N and len(changes) == N
    assert [r.workload_key for r in registry.active()] == sorted(r.workload_key for r in requests)


def test_entries_expire_ttl_after_their_last_call_and_are_forgotten():
    clock = Clock()
    registry = Registry(clock, ttl_s=600)
    forgotten = []
    registry.on_forget(lambda r, gone: forgotten.append((r.workload_key, gone)))
    requests = [request(i) for i in range(N)]
    for r in requests:
        registry.touch(r)
    clock.t += 300
    for r in requests[::2]:                                   # KEDA keeps calling about half of them
        registry.touch(r)
    clock.t += 301                                            # the others' last call was 601 s ago
    live = registry.active()
    assert [r.workload_key for r in live] == sorted(r.workload_key for r in requests[::2])
    assert len(registry) == N // 2
    assert sorted(forgotten) == sorted((r.workload_key, True) for r in requests[1::2])
    clock.t += 299                                            # exactly ttl_s after the last call: kept
    assert len(registry.active()) == N // 2
    clock.t += 1
    assert registry.active() == () and len(registry) == 0


def test_a_changed_request_replaces_the_entry_and_the_old_one_is_forgotten_not_the_workload():
    registry = Registry(Clock(), ttl_s=600)
    forgotten = []
    registry.on_forget(lambda r, gone: forgotten.append((r.workload_key, gone)))
    for i in range(N):
        registry.touch(request(i))
    assert registry.touch(request(42, streams=16)) is True
    assert forgotten == [("cams/cams-42", False)]
    assert len(registry) == N
