"""StreamIsActive sends `true` on inactive-to-active transitions only, and ends OK on shutdown."""

from __future__ import annotations

import queue
import threading
import time

import grpc

from tests.scaler.helpers import SettableDemand, ref, start_live, stub_for

QUERY = 'sum(wattwise_active_streams{workload="door-cams"})'


def _drain(call, out: queue.Queue):
    try:
        for msg in call:
            out.put(("msg", msg.result))
        out.put(("end", call.code()))
    except grpc.RpcError as e:
        out.put(("end", e.code()))


class StepClock:
    """The plan clock; each step moves past the planner's 300 s scale-down window."""

    def __init__(self):
        self.now_s = 1_700_000_000.0

    def __call__(self):
        return self.now_s


def _settle(scaler, demand, value, clock=None):
    """Change demand, refresh, and give the stream a moment to look (sequencing, not a timing check)."""
    if clock is not None:
        clock.now_s += 600.0
    demand.set(QUERY, value)
    scaler.scaler.refresher.refresh_once()
    time.sleep(0.4)


def test_push_stream_sends_true_on_transitions_only_and_ends_ok():
    demand = SettableDemand({QUERY: 0})
    clock = StepClock()
    scaler = start_live(demand, clock=clock, start_refresher=False, interval_s=15.0)
    channel, stub = stub_for(scaler.grpc_port)
    so = ref("door", "shop", workload="door-cams", query=QUERY)
    stub.GetMetricSpec(so, timeout=5)
    scaler.scaler.refresher.refresh_once()
    assert stub.IsActive(so, timeout=5).result is False
    got: queue.Queue = queue.Queue()
    call = stub.StreamIsActive(so)
    threading.Thread(target=_drain, args=(call, got), daemon=True).start()
    time.sleep(0.4)
    for value in (0, 8, 12, 0, 0, 5):   # inactive, active, active, inactive, inactive, active
        _settle(scaler, demand, value, clock)
    scaler.stop(grace_s=2.0)
    events = []
    while True:
        kind, value = got.get(timeout=10)
        events.append((kind, value))
        if kind == "end":
            break
    assert events == [("msg", True), ("msg", True), ("end", grpc.StatusCode.OK)]
    channel.close()


def test_stream_opened_on_an_active_workload_gets_one_true():
    demand = SettableDemand({QUERY: 10})
    scaler = start_live(demand, start_refresher=False)
    channel, stub = stub_for(scaler.grpc_port)
    so = ref("door", "shop", workload="door-cams", query=QUERY)
    stub.GetMetricSpec(so, timeout=5)
    scaler.scaler.refresher.refresh_once()
    call = stub.StreamIsActive(so)
    assert next(call).result is True
    _settle(scaler, demand, 11)       # still active: nothing more
    scaler.stop(grace_s=2.0)
    assert list(call) == []
    assert call.code() == grpc.StatusCode.OK
    channel.close()
