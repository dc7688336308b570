"""GET /plan on the extender's port, and `wattwise explain` reading it, over a real socket."""

from __future__ import annotations

import json
import socket
import urllib.request

import pytest

from wattwise.cli import main
from wattwise.models.scenario import load_scenario
from wattwise.runtime import StaticPlanSource
from wattwise.scheduler.node_cache import StaticNodeCache
from wattwise.scheduler.server import start_extender

SCENARIO = "scenarios/metro-retail.yaml"


@pytest.fixture(scope="module")
def served():
    source = StaticPlanSource(load_scenario(SCENARIO).snapshot)
    handle = start_extender(source, "127.0.0.1", 0, StaticNodeCache.from_snapshot(source.current().snapshot))
    yield source, handle
    handle.stop(2.0)


def get_plan(handle) -> dict:
    with urllib.request.urlopen(f"{handle.url}/plan", timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("application/json")
        return json.load(resp)


def test_plan_json_is_the_plan_the_doors_serve(served):
    source, handle = served
    view = source.current()
    doc = get_plan(handle)
    assert doc["plan_version"] == 1 and doc["objective"] == view.plan.objective
    assert doc["generated_at"].endswith("Z")
    assert doc["inputs"]["nodes"] == {"count": len(view.snapshot.nodes), "source": f"{len(view.snapshot.nodes)} nodes of a scenario file"}
    assert set(doc["inputs"]["carbon"]) == {n.zone for n in view.snapshot.nodes}
    assert {m["kind"] for m in doc["inputs"]["models"]} <= {"fitted", "prior"}
    by_key = {w["key"]: w for w in doc["workloads"]}
    assert set(by_key) == set(view.plan.workloads)
    for key, wp in view.plan.workloads.items():
        w = by_key[key]
        assert w["replicas"] == wp.replicas == sum(p["replicas"] for p in w["placements"])
        assert {p["node"]: p["replicas"] for p in w["placements"]} == {n: c for n, c in wp.by_node.items() if c}
        assert w["unmet_fps"] == round(wp.unmet_fps, 3) and w["reasons"] == list(wp.reasons)
    states = {n["name"]: n["state"] for n in doc["nodes"]}
    assert {n for n, s in states.items() if s == "active"} == set(view.plan.active_nodes)
    assert all(n["grid_zone"] for n in doc["nodes"])

    source.replace(view.snapshot)
    assert get_plan(handle)["plan_version"] == 2


def test_explain_prints_a_workload_for_a_person(served, capsys):
    source, handle = served
    address = handle.url.removeprefix("http://")
    key = sorted(source.current().plan.workloads)[0]
    assert main(["explain", "--address", address, key]) == 0
    out = capsys.readouterr().out
    wp = source.current().plan.workloads[key]
    assert f"{key}: {wp.replicas} replicas" in out
    assert all(r in out for r in wp.reasons)
    assert "nodes:" in out and "carbon" in out

    assert main(["explain", "--address", address, "nowhere/nothing"]) == 2
    assert "nowhere/nothing: no such workload in the plan" in capsys.readouterr().err


def test_explain_says_when_nothing_answers(capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(["explain", "--address", f"127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot reach" in err[0] and "wattwise serve --extender" in err[0]


def explain_error(capsys, *args) -> str:
    rc = main(["explain", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, (rc, err)
    return err[0]


@pytest.fixture
def garbage_pem(tmp_path):
    path = tmp_path / "bad.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    return path


def test_explain_names_a_ca_it_cannot_read_before_dialling(tmp_path, capsys):
    missing = tmp_path / "nope.pem"
    assert explain_error(capsys, "--address", "127.0.0.1:9", "--ca", str(missing)) == (
        f"wattwise explain: error: --ca: cannot read {missing}: No such file or directory")


def test_explain_names_a_ca_that_is_not_pem(garbage_pem, capsys):
    line = explain_error(capsys, "--address", "127.0.0.1:9", "--ca", str(garbage_pem))
    assert line.startswith(f"wattwise explain: error: --ca: {garbage_pem}: not a PEM CA certificate"), line


def test_explain_names_a_client_key_it_cannot_load(tmp_path, garbage_pem, capsys):
    missing = tmp_path / "nope.key"
    line = explain_error(capsys, "--address", "127.0.0.1:9", "--cert", str(garbage_pem), "--key", str(missing))
    assert line == f"wattwise explain: error: --key: cannot read {missing}: No such file or directory", line
    line = explain_error(capsys, "--address", "127.0.0.1:9", "--cert", str(garbage_pem), "--key", str(garbage_pem))
    assert line.startswith("wattwise explain: error: --cert/--key: "), line
    assert "not a PEM certificate and its private key" in line, line


def test_explain_refuses_a_timeout_that_is_not_positive(capsys):
    assert explain_error(capsys, "--address", "127.0.0.1:9", "--timeout-s", "-1") == (
        "wattwise explain: error: --timeout-s: -1.0 is not a positive number "
        "(give seconds to wait for the answer, e.g. 10)")


def test_explain_at_the_scalers_grpc_port_suggests_the_extenders(capsys):
    from tests.scaler.helpers import start_demo

    scaler = start_demo()
    try:
        line = explain_error(capsys, "--address", f"127.0.0.1:{scaler.grpc_port}", "--timeout-s", "5")
    finally:
        scaler.stop(1.0)
    assert f"127.0.0.1:{scaler.grpc_port}/plan did not answer as the extender does" in line, line
    assert "8888" in line, line


def test_explain_over_https_at_a_plain_http_port_suggests_the_extenders(served, tmp_path, capsys):
    _, handle = served
    from tests.scaler.certs import make_pki

    pki = make_pki(tmp_path)
    line = explain_error(capsys, "--address", handle.url.replace("http://", "https://"), "--ca", str(pki.ca_cert))
    assert line.startswith("wattwise explain: error: cannot reach https://") and "8888" in line, line


def test_explain_reads_the_plan_from_the_plaintext_health_port(capsys):
    """What the README has operators run through `kubectl port-forward svc/wattwise-health 8889`."""
    source = StaticPlanSource(load_scenario(SCENARIO).snapshot)
    handle = start_extender(source, "127.0.0.1", 0, StaticNodeCache.from_snapshot(source.current().snapshot),
                            health_port=0)
    try:
        key = sorted(source.current().plan.workloads)[0]
        assert main(["explain", "--address", f"127.0.0.1:{handle.health_port}", key]) == 0
        assert f"{key}: {source.current().plan.workloads[key].replicas} replicas" in capsys.readouterr().out
    finally:
        handle.stop(2.0)
