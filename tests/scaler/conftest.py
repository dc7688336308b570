from __future__ import annotations

import pytest

from tests.scaler.helpers import start_demo, stub_for


@pytest.fixture(scope="module")
def demo():
    scaler = start_demo()
    yield scaler
    scaler.stop(1.0)


@pytest.fixture(scope="module")
def stub(demo):
    channel, stub = stub_for(demo.grpc_port)
    yield stub
    channel.close()
