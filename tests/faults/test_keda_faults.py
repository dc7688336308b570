"""KEDA misbehaving against `wattwise serve --scaler --extender` (the fake Kubernetes API):

- a reconnect storm: many KEDA-like clients (KEDA's operator restarting, a flapping network)
  connecting at once, each doing what KEDA does on connect (GetMetricSpec, GetMetrics, IsActive,
  and opening the push streams StreamIsActive and StreamMetricSpec) and then dropping the
  connection mid-stream, over and over. Every answer stays right, the answers to a steady KEDA
  (the probe) stay prompt, every stream the storm opened is closed on the server's side, and the
  process holds no more threads or file descriptors afterwards than it needs.
- SIGTERM with streams open (in cluster mode, with the watches, the extender and the refresher
  running; `tests/scaler/test_sigterm.py` covers `serve --demo` with one stream): every stream
  ends with OK, the process exits 0 within its grace period, and it lets go of its watches.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.faults.harness import DEADLINE_S, Probe, start_rig, stop_rig
from tests.kube_fake import RESOURCES, wait_until
from wattwise.scaler.proto import externalscaler_pb2 as pb
from wattwise.scaler.proto import externalscaler_pb2_grpc as pb_grpc

pytestmark = pytest.mark.slow

CLIENTS, ROUNDS = 32, 10


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _threads(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Threads:")))


def _keda_client(port: int, so: pb.ScaledObjectRef, rounds: int, seed: int, want: float,
                 problems: list[str]) -> None:
    """What KEDA does when it (re)connects, then the connection dropped at a random point."""
    rng = random.Random(seed)
    for _ in range(rounds):
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = pb_grpc.ExternalScalerStub(channel)
        try:
            spec = stub.GetMetricSpec(so, timeout=10)
            name = spec.metricSpecs[0].metricName
            got = stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=so, metricName=name), timeout=10)
            if got.metricValues[0].metricValueFloat < want:
                problems.append(f"GetMetrics {got.metricValues[0].metricValueFloat} < {want}")
            if not stub.IsActive(so, timeout=10).result:
                problems.append("IsActive false")
            active = stub.StreamIsActive(so)
            specs = stub.StreamMetricSpec(so)
            if not next(active).result:
                problems.append("StreamIsActive pushed false")
            if next(specs).metricSpecs[0].metricName != name:
                problems.append("StreamMetricSpec names another metric")
            time.sleep(rng.uniform(0.0, 0.3))
            if rng.random() < 0.5:
                active.cancel()                       # a client going away mid-stream
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.CANCELLED:
                problems.append(f"{e.code()}: {e.details()}")
        except StopIteration:
            problems.append("a stream ended before its first message")
        finally:
            channel.close()                           # drops whatever is still open


@pytest.fixture
def rig(tmp_path):
    rig = start_rig(tmp_path)
    yield rig
    assert stop_rig(rig) == 0, rig.log()


def test_keda_reconnect_storm(rig):
    pid = rig.served.proc.pid
    baseline = rig.keda()
    so = pb.ScaledObjectRef(name="checkout-cams", namespace="retail", scalerMetadata=rig.metadata)
    probe = Probe(rig).start()
    assert probe.wait_ticks(time.time(), 2)
    fds, threads = _fds(pid), _threads(pid)
    problems: list[str] = []
    start = time.time()
    storm = [threading.Thread(target=_keda_client, args=(rig.served.grpc_port, so, ROUNDS, i, baseline, problems),
                              daemon=True) for i in range(CLIENTS)]
    for t in storm:
        t.start()
    for t in storm:
        t.join(60)
    end = time.time()
    assert not any(t.is_alive() for t in storm), "a storm client hung"
    assert not problems, problems[:10]

    assert rig.served.log().count("StreamIsActive opened for") >= CLIENTS * ROUNDS
    # and holds no more than it did: no thread or descriptor per dropped client left behind
    assert wait_until(lambda: _fds(pid) <= fds + 8 and _threads(pid) <= threads + 4, DEADLINE_S), \
        (fds, _fds(pid), threads, _threads(pid))
    probe.stop()
    during = probe.check(start, end, floor=baseline)
    assert max(t.keda_s for t in during) <= 2.0, "a steady KEDA waited on the storm"
    assert all(not t.plan["degraded"] for t in during if t.plan)
    with grpc.insecure_channel(f"127.0.0.1:{rig.served.grpc_port}") as channel:
        assert health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""),
                                                         timeout=5).status == health_pb2.HealthCheckResponse.SERVING
    assert rig.keda() == baseline and rig.alive()


def test_sigterm_with_streams_open(tmp_path):
    rig = start_rig(tmp_path)
    try:
        so = pb.ScaledObjectRef(name="checkout-cams", namespace="retail", scalerMetadata=rig.metadata)
        channels = [grpc.insecure_channel(f"127.0.0.1:{rig.served.grpc_port}") for _ in range(4)]
        streams = []
        for channel in channels:
            stub = pb_grpc.ExternalScalerStub(channel)
            for _ in range(5):
                streams.append(stub.StreamIsActive(so))
                streams.append(stub.StreamMetricSpec(so))
        for s in streams:
            assert next(s) is not None                  # open: each has said its first word
        assert wait_until(lambda: all(rig.api.open_watches(name) >= 1 for name, *_ in RESOURCES), DEADLINE_S)
        probe = Probe(rig, every_s=0.05).start()        # calls in flight as the signal comes
        assert probe.wait_ticks(time.time(), 4)
        rig.served.proc.send_signal(signal.SIGTERM)
        signalled = time.time()
        for s in streams:
            assert list(s) == []                        # nothing more, then the end
            assert s.code() == grpc.StatusCode.OK, (s.code(), s.details())
        probe.stop()
        assert rig.served.proc.wait(timeout=2 + 10) == 0, rig.log()   # --grace-s 2, plus the interpreter's exit
        assert time.time() - signalled <= 12
        for channel in channels:
            channel.close()
        assert "signal received; stopping" in rig.served.log()
        assert "Traceback" not in rig.served.log(), rig.log()
        # every call the probe made before the signal was answered (later ones may be refused)
        answered = [t for t in probe.ticks if t.done < signalled]
        assert answered and all(not t.errors for t in answered), [t.errors for t in answered if t.errors][:3]
    finally:
        stop_rig(rig)
