"""Which ScaledObjects are ours: a trigger's scalerAddress naming our Service, in our namespace
when we know it (a second installation's same-named Service elsewhere is not ours)."""

import argparse

import pytest

from wattwise import serve_cli
from wattwise.kube.inputs import scaler_address_matcher


@pytest.mark.parametrize("address, ours_anywhere, ours_here", [
    ("wattwise-scaler:6000", True, True),                                   # KEDA resolves it as given
    ("wattwise-scaler.wattwise-system:6000", True, True),
    ("wattwise-scaler.wattwise-system.svc:6000", True, True),
    ("wattwise-scaler.wattwise-system.svc.cluster.local:6000", True, True),
    ("wattwise-scaler.team-b.svc:6000", True, False),                      # another installation
    ("wattwise-scaler-b.wattwise-system.svc:6000", False, False),
    ("keda-scaler.wattwise-system.svc:6000", False, False),
    (" wattwise-scaler.wattwise-system.svc:6000 ", True, True),
])
def test_scaler_address(address, ours_anywhere, ours_here):
    assert scaler_address_matcher("wattwise-scaler")(address) is ours_anywhere
    assert scaler_address_matcher("wattwise-scaler", "wattwise-system")(address) is ours_here


def test_the_namespace_is_the_service_accounts_in_a_cluster_only(tmp_path, caplog):
    path = tmp_path / "namespace"
    path.write_text("wattwise-system")
    in_cluster = argparse.Namespace(in_cluster=True, scaler_service="wattwise-scaler")
    assert serve_cli._own_namespace(in_cluster, str(path)) == "wattwise-system"
    assert serve_cli._own_namespace(argparse.Namespace(in_cluster=False), str(path)) is None
    assert serve_cli._own_namespace(in_cluster, str(tmp_path / "missing")) is None
    assert "in any namespace are planned here" in caplog.text
