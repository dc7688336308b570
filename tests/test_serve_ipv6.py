"""`--host ::` on real sockets: the gRPC ports take a bracketed IPv6 literal, the extender's HTTP
and health ports listen IPv6 and IPv4 alike (an IPv6 cluster's kubelet and kube-scheduler reach
the pod over IPv6), and an address that cannot be listened on is named with the OS's reason."""

from __future__ import annotations

import socket

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from wattwise import serve_cli
from wattwise.cli import main
from wattwise.listen import host_port
from wattwise.scaler.server import ServerConfig
from wattwise.scheduler.node_cache import StaticNodeCache
from wattwise.scheduler.server import start_extender

from .scaler.helpers import start_demo
from .scheduler.helpers import get, recorded_node_list


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


needs_ipv6 = pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback on this machine")
BOTH_LOOPBACKS = ["127.0.0.1", "::1"]


def test_host_port_brackets_ipv6_literals_only():
    assert host_port("::", 6000) == "[::]:6000"
    assert host_port("fd00::5", 1) == "[fd00::5]:1"
    assert host_port("0.0.0.0", 6000) == "0.0.0.0:6000"
    assert host_port("wattwise-scaler", 6000) == "wattwise-scaler:6000"


def _serving(loopback: str, port: int) -> int:
    with grpc.insecure_channel(host_port(loopback, port)) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    return reply.status


@needs_ipv6
def test_the_scaler_on_the_ipv6_wildcard_answers_both_loopbacks():
    scaler = start_demo(config=ServerConfig(host="::", grpc_port=0, health_port=0, grace_s=1.0))
    try:
        for loopback in BOTH_LOOPBACKS:
            assert _serving(loopback, scaler.grpc_port) == health_pb2.HealthCheckResponse.SERVING
            assert _serving(loopback, scaler.health_port) == health_pb2.HealthCheckResponse.SERVING
    finally:
        scaler.stop()


class NoPlanYet:
    def current(self):
        raise RuntimeError("no plan yet")


@needs_ipv6
def test_the_extender_and_its_health_port_on_the_ipv6_wildcard_answer_both_loopbacks():
    cache = StaticNodeCache.from_node_json(recorded_node_list()["items"])
    handle = start_extender(NoPlanYet(), "::", 0, cache, health_port=0)
    try:
        for loopback in BOTH_LOOPBACKS:
            for port in (handle.port, handle.health_port):
                assert get(f"http://{host_port(loopback, port)}/healthz")[0] == 200, (loopback, port)
    finally:
        handle.stop(2.0)


@needs_ipv6
def test_the_extender_on_ipv6_loopback_says_its_url_in_brackets():
    handle = start_extender(NoPlanYet(), "::1", 0, StaticNodeCache.from_node_json(recorded_node_list()["items"]))
    try:
        assert handle.url == f"http://[::1]:{handle.port}"
        assert get(handle.url + "/healthz")[0] == 200
    finally:
        handle.stop(2.0)


def test_an_address_not_on_this_machine_names_the_os_reason_not_a_busy_port(capsys):
    rc = main(["serve", "--demo", "--host", "192.0.2.1", "--grpc-port", "7311", "--health-port", "0",
               "--http-port", "0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == [
        "wattwise serve: error: --host: cannot listen on 192.0.2.1:7311: Cannot assign requested address "
        "(give --host an address of this machine, or 0.0.0.0 (IPv4) or :: (IPv6 and IPv4))"]


@needs_ipv6
def test_a_bind_failure_in_grpc_names_the_address_in_brackets_and_the_os_reason():
    with socket.socket(socket.AF_INET6) as busy:
        busy.bind(("::1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        error = RuntimeError(f"Failed to bind to address [::1]:{port}; set GRPC_VERBOSITY=debug ...")
        with pytest.raises(ValueError) as raised:
            serve_cli._raise_bind_failed("--grpc-port/--health-port", error)
    assert str(raised.value) == (f"--grpc-port/--health-port: cannot listen on [::1]:{port}: Address already in use "
                                 "(stop what listens there, or choose another port; 0 picks a free one)")


@needs_ipv6
def test_a_port_taken_on_ipv4_is_found_taken_for_the_ipv6_wildcard_before_anything_starts(capsys, monkeypatch):
    """`::` is bound dual-stack, so 0.0.0.0:PORT in use makes it fail; the early check probed
    IPv6-only, passed, and the failure came after the plan and the gRPC scaler had started."""
    monkeypatch.setattr(serve_cli, "_serve", lambda args: pytest.fail("started serving"))
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        rc = main(["serve", "--demo", "--host", "::", "--grpc-port", "0", "--health-port", "0",
                   "--http-port", str(port)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == [f"wattwise serve: error: --http-port: [::]:{port} is already in use "
                               "(stop what listens there, or choose another port; 0 picks a free one)"]
