"""The two doors on loopback for the fuzz tests (`cases.fuzz_settings`: how many inputs)."""

from __future__ import annotations

import pytest

from tests.fuzz.doors import ErrorLog, GrpcClient, HttpClient, start_extender_door, start_scaler_door


@pytest.fixture(scope="module")
def error_log():
    """ERROR records and tracebacks logged anywhere while the module's doors run."""
    with ErrorLog() as log:
        yield log


@pytest.fixture(scope="module")
def extender():
    handle = start_extender_door()
    yield handle
    handle.stop(2.0)


@pytest.fixture(scope="module")
def http_client(extender):
    client = HttpClient("127.0.0.1", extender.port)
    yield client
    client.close()


@pytest.fixture(scope="module")
def scaler():
    demo = start_scaler_door()
    yield demo
    demo.stop(1.0)


@pytest.fixture(scope="module")
def grpc_client(scaler):
    client = GrpcClient(scaler.grpc_port)
    yield client
    client.close()
