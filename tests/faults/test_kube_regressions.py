"""Regression (issue 15, faults): while the Kubernetes API server was unreachable (restarting),
`wattwise serve` planned on with the nodes and pods it last listed and said nothing: `GET /plan`
showed `degraded: false` and `wattwise_degraded` stayed 0 (only the extender's
`wattwise_extender_node_cache_sync_age_seconds` grew). Now the cluster inventory says when a
store it reads is failing (`ClusterInventory.stale_reason`) and the refresher reports it as a
degraded reason, which clears when the store is listed again. Fast: the fake API in process, no
`wattwise serve` (tests/faults/test_kube_faults.py::test_api_server_restarting runs that)."""

from __future__ import annotations


from tests.kube_fake import FakeKubeApi, kube_cluster, wait_until
from tests.scaler.helpers import snapshot
from wattwise.kube.inputs import ClusterInventory
from wattwise.scaler.app import build_scaler, settings_from_snapshot
from wattwise.scaler.demand import RecordedDemand
from wattwise.scaler.sources import ScenarioCarbon, ScenarioInventory, catalogue


def test_the_cluster_inventory_says_when_a_store_it_reads_is_failing():
    api = FakeKubeApi.recorded().start()
    cluster = kube_cluster(api).start()
    try:
        assert cluster.wait_synced(10)
        inventory = ClusterInventory(cluster)
        assert inventory.nodes() and inventory.stale_reason() == ""
        api.resources["nodes"].status = 403          # the API server refuses the nodes from now on
        api.close_watches("nodes")
        assert wait_until(lambda: inventory.stale_reason() != "")
        reason = inventory.stale_reason()
        assert reason.startswith("Kubernetes API failing (nodes: forbidden (403)"), reason
        assert reason.endswith("planning with the nodes and pods last listed")
        assert len(inventory.nodes()) == 8           # what it last listed, still served
        api.resources["nodes"].status = None         # back: listed again, the reason gone
        assert wait_until(lambda: inventory.stale_reason() == "")
    finally:
        cluster.stop()
        api.stop()


class _StaleInventory(ScenarioInventory):
    def __init__(self, snap):
        super().__init__(snap)
        self.reason = ""

    def stale_reason(self) -> str:
        return self.reason


def test_the_refresher_reports_an_inventory_that_may_be_stale_and_clears_it():
    snap = snapshot()
    inventory = _StaleInventory(snap)
    settings = settings_from_snapshot(snap, 15.0)
    scaler = build_scaler(inventory=inventory, demand=RecordedDemand({}), carbon=ScenarioCarbon(snap),
                          catalogue_by_key=catalogue(snap), settings=settings)
    refresher = scaler.refresher
    refresher.refresh_once()
    assert not refresher.state().degraded
    inventory.reason = "Kubernetes API failing (nodes: connection refused); planning with the nodes and pods last listed"
    refresher.refresh_once()
    state = refresher.state()
    assert state.degraded and state.degraded_reasons == (inventory.reason,)
    assert state.default_view.degraded and state.default_view.degraded_reasons == (inventory.reason,)
    inventory.reason = ""
    refresher.refresh_once()
    assert not refresher.state().degraded and not refresher.state().default_view.degraded
