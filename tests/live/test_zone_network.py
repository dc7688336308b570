"""Nearby grid zones in the live loop: a ScaledObject's `originZone` limits which zones may serve
it to those `--zone-network` reaches within its `latencyMs`; without the file, to its own zone."""

from __future__ import annotations

import copy

import pytest

from tests.kube_fake import FakeKubeApi, recorded_list, wait_until
from tests.live.serve_proc import serve, write_kubeconfig

pytestmark = pytest.mark.slow
CHECKOUT = recorded_list("scaledobjects")["items"][0]     # retail/checkout-cams: TDX, on the DE nodes


def checkout(doc: dict) -> dict:
    return next(w for w in doc["workloads"] if w["key"] == "retail/checkout-cams")


def with_origin(origin: str, latency_ms: str) -> dict:
    so = copy.deepcopy(CHECKOUT)
    so["spec"]["triggers"][0]["metadata"].update(originZone=origin, latencyMs=latency_ms)
    return so


@pytest.mark.parametrize("network, served_from_de", [(None, False), ("{DE: {US-CAL-CISO: 150}}", True)])
def test_origin_zone_and_the_zone_network(tmp_path, network, served_from_de):
    api = FakeKubeApi.recorded().start()
    args = ["serve", "--scaler", "--extender", "--kubeconfig", str(write_kubeconfig(tmp_path / "kc", api.url)),
            "--host", "127.0.0.1", "--grpc-port", "0", "--health-port", "0", "--http-port", "0", "--plan-inline",
            "--refresh-s", "1", "--grace-s", "2"]
    if network:
        (tmp_path / "net.yaml").write_text(network + "\n")
        args += ["--zone-network", str(tmp_path / "net.yaml")]
    served = serve(tmp_path, args)
    try:
        assert wait_until(lambda: checkout(served.get("/plan"))["replicas"] > 0, 45), served.log()
        # the cameras are in California, the TDX nodes in Germany, 150 ms away
        api.emit("scaledobjects", "MODIFIED", with_origin("US-CAL-CISO", "400"))
        if served_from_de:
            assert wait_until(lambda: checkout(served.get("/plan"))["replicas"] > 0 and
                              any("US-CAL-CISO" in r for r in checkout(served.get("/plan"))["reasons"]) is False, 45)
            assert {p["node"] for p in checkout(served.get("/plan"))["placements"]} <= {"spr-tdx-1", "spr-tdx-2"}
            # a bound the round trip cannot fit: not served at all, and said why
            api.emit("scaledobjects", "MODIFIED", with_origin("US-CAL-CISO", "120"))
        assert wait_until(lambda: checkout(served.get("/plan"))["unmet_fps"] > 0, 45), served.log()
        doc = checkout(served.get("/plan"))
        assert doc["placements"] == []
        assert any("US-CAL-CISO" in r for r in doc["reasons"]), doc["reasons"]
    finally:
        assert served.stop() == 0, served.log()
        api.stop()
