"""Grid zones for a carbon provider that names its regions its own way (WattTime, the
carbon-aware-sdk, the UK API): the bundled cloud-region table gives Electricity Maps zone keys,
which such a provider refuses, so it is not used; the label and the user's map still are."""

import argparse
import logging

import pytest

from tests.kube_fake import FakeKubeApi, kube_cluster
from wattwise import serve_cli


@pytest.fixture
def cluster():
    api = FakeKubeApi.recorded().start()
    cluster = kube_cluster(api).start()
    assert cluster.wait_synced(10)
    yield cluster
    cluster.stop(5.0)
    api.stop()


def zones(cluster, provider, grid_zone_map=None):
    args = argparse.Namespace(scaler_service="wattwise-scaler", in_cluster=False, grid_zone_map=grid_zone_map)
    inventory, _, _ = serve_cli._cluster_inputs(args, cluster, None, provider)
    return {n.name: n.zone for n in inventory.nodes()}


def test_the_bundled_table_serves_electricity_maps_only(cluster, tmp_path, caplog):
    em = zones(cluster, "electricitymaps")
    assert em["spr-tdx-1"] == "DE"                       # eu-central-1, by the bundled cloud-region table
    with caplog.at_level(logging.INFO, logger="wattwise.serve_cli"):
        wt = zones(cluster, "watttime")
    assert wt["spr-tdx-1"] == "unmapped" and set(wt.values()) == {"unmapped"}
    assert "carbon from watttime, which names its regions its own way" in caplog.text
    mapped = tmp_path / "zones.yaml"
    mapped.write_text("eu-central-1: DE_REGION\nuk-south-1: UK_REGION\n")
    assert zones(cluster, "watttime", str(mapped))["spr-tdx-1"] == "DE_REGION"
