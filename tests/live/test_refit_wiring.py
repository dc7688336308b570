"""`wattwise serve` runs the quality-gated refit in the background when it has --prometheus and
--models, and never lets a failing refit (here: Prometheus unreachable) touch the answers."""

from __future__ import annotations

import socket

import grpc
import pytest

from tests.kube_fake import wait_until
from tests.live.serve_proc import serve

pytestmark = pytest.mark.slow


def answered(served) -> bool:
    try:
        return served.metrics("checkout-cams", "retail", {"workload": "checkout-cams", "streams": "48"}) > 0
    except grpc.RpcError:       # registered by the first call, planned moments later
        return False


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("every, on", [("1h", True), ("0", False)])
def test_refit_runs_beside_the_servers_and_its_failure_is_reported(tmp_path, every, on):
    models = tmp_path / "models"
    models.mkdir()
    # the extender needs a Kubernetes API; the scaler alone is enough to show the refit's wiring
    served = serve(tmp_path, ["serve", "--scaler", "--scenario", "scenarios/metro-retail.yaml", "--host", "127.0.0.1",
                              "--grpc-port", "0", "--health-port", "0", "--plan-inline",
                              "--prometheus", f"http://127.0.0.1:{closed_port()}", "--models", str(models),
                              "--refit-every", every, "--refit-window", "2h"])
    try:
        if on:
            assert wait_until(lambda: "refitting the energy models every 1h over the last 2h" in served.log()), \
                served.log()
            assert wait_until(lambda: "refit" in served.log().lower() and "unreachable" in served.log().lower(), 30), \
                served.log()
        assert wait_until(lambda: answered(served), 30), served.log()   # KEDA is answered all the while
        if not on:
            assert "refitting" not in served.log()
        assert list(models.iterdir()) == []      # nothing learned, nothing written
    finally:
        assert served.stop() == 0, served.log()
