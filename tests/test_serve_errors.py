"""`wattwise serve` refuses what cannot work before anything starts: one line, exit code 2, and
nothing half-started left running (no Kubernetes configuration for the extender, a missing
kubeconfig, a port already taken)."""

from __future__ import annotations

import re
import socket
import threading

import pytest

from wattwise import serve_cli
from wattwise.cli import main




@pytest.fixture
def no_kube(monkeypatch, tmp_path):
    """A machine with no Kubernetes configuration anywhere."""
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def taken_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def ours() -> list[str]:
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("wattwise"))


def serve_error(capsys, *args) -> str:
    before = ours()
    rc = main(["serve", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert ours() == before
    return err[0]


def test_extender_without_kubernetes_configuration(no_kube, capsys):
    assert serve_error(capsys, "--extender", "--http-port", "0") == (
        "wattwise serve: error: --extender: no Kubernetes configuration: no --kubeconfig, $KUBECONFIG or "
        "~/.kube/config, and not --in-cluster (give --kubeconfig FILE, or --in-cluster in a pod; --demo needs "
        "no cluster)")


def test_kubeconfig_naming_a_missing_file(no_kube, tmp_path, capsys):
    missing = tmp_path / "nope.yaml"
    assert serve_error(capsys, "--extender", "--kubeconfig", str(missing)) == (
        f"wattwise serve: error: --kubeconfig: no such file: {missing}")


def test_kubeconfig_env_naming_missing_files(no_kube, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'a'}:{tmp_path / 'b'}")
    assert serve_error(capsys, "--extender") == (
        f"wattwise serve: error: $KUBECONFIG: no such file: '{tmp_path / 'a'}:{tmp_path / 'b'}' "
        "(point it at a kubeconfig, or give --kubeconfig FILE)")


def test_in_cluster_outside_a_pod(no_kube, capsys):
    assert serve_error(capsys, "--extender", "--in-cluster") == (
        "wattwise serve: error: --in-cluster: not in a pod: $KUBERNETES_SERVICE_HOST and $KUBERNETES_SERVICE_PORT "
        "are not set (outside a cluster, give --kubeconfig FILE)")


def test_an_unreadable_kubeconfig_is_one_line(no_kube, tmp_path, capsys):
    bad = tmp_path / "kubeconfig"
    bad.write_text("apiVersion: v1\n")
    line = serve_error(capsys, "--extender", "--kubeconfig", str(bad), "--http-port", "0")
    assert line.startswith("wattwise serve: error: Kubernetes configuration: Invalid kube-config file.")


@pytest.mark.parametrize("flag, others", [
    ("--grpc-port", ["--health-port", "0", "--http-port", "0"]),
    ("--health-port", ["--grpc-port", "0", "--http-port", "0"]),
    ("--http-port", ["--grpc-port", "0", "--health-port", "0"]),
    ("--metrics-port", ["--grpc-port", "0", "--health-port", "0", "--http-port", "0"]),
])
def test_a_taken_port_is_refused_before_anything_starts(taken_port, capsys, monkeypatch, flag, others):
    monkeypatch.setattr(serve_cli, "_serve", lambda args: pytest.fail("started serving"))
    assert serve_error(capsys, "--demo", "--host", "127.0.0.1", flag, str(taken_port), *others) == (
        f"wattwise serve: error: {flag}: 127.0.0.1:{taken_port} is already in use "
        "(stop what listens there, or choose another port; 0 picks a free one)")


def test_the_same_port_twice(capsys):
    assert serve_error(capsys, "--demo", "--host", "127.0.0.1", "--grpc-port", "7301", "--http-port", "7301") == (
        "wattwise serve: error: --http-port: port 7301 is also given to --grpc-port (give each its own port)")


@pytest.mark.parametrize("flag", ["--grpc-port", "--http-port"])
def test_a_port_taken_after_the_check_stops_what_started(taken_port, capsys, monkeypatch, flag):
    """The port is taken between the check and the bind: what started is stopped again."""
    monkeypatch.setattr(serve_cli, "check_ports", lambda args: None)
    free = {"--grpc-port": "0", "--health-port": "0", "--http-port": "0", flag: str(taken_port)}
    rc = main(["serve", "--demo", "--host", "127.0.0.1", *(x for kv in free.items() for x in kv)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith(f"wattwise serve: error: {flag}")
    assert "Traceback" not in "\n".join(err)
    assert ours() == []


@pytest.mark.parametrize("args, expected", [
    (["--scrape-interval", "0s"], "--scrape-interval: '0s' is not a positive duration"),
    (["--scrape-interval", "1m", "--refit-window", "5m"], "--refit-window: 5m holds fewer than 10 scrapes of 1m"),
])
def test_refit_flags_are_checked_before_anything_starts(tmp_path, capsys, args, expected):
    line = serve_error(capsys, "--scaler", "--scenario", "scenarios/metro-retail.yaml", "--grpc-port", "0",
                       "--health-port", "0", "--prometheus", "http://127.0.0.1:9", "--models", str(tmp_path), *args)
    assert line.startswith(f"wattwise serve: error: {expected}"), line


def test_a_bad_zone_network_is_one_line(tmp_path, capsys):
    net = tmp_path / "net.yaml"
    net.write_text("{DE: {FR: 9}, FR: {DE: 12}}\n")
    line = serve_error(capsys, "--scaler", "--scenario", "scenarios/metro-retail.yaml", "--grpc-port", "0",
                       "--health-port", "0", "--zone-network", str(net))
    assert line.startswith("wattwise serve: error: --zone-network.FR.DE: ") and "symmetric" in line, line


@pytest.mark.parametrize("args, expected", [
    (["--node-resync-s", "0"], "--node-resync-s: 0.0 is not a positive number (give seconds between full lists"),
    (["--node-resync-s", "nan"], "--node-resync-s: nan is not a positive number"),
    (["--max-request-bytes", "-1"], "--max-request-bytes: -1 is not a positive number"),
    (["--grace-s", "-1"], "--grace-s: -1.0 is not a number of at least 0"),
    (["--registration-ttl-s", "0"], "--registration-ttl-s: 0.0 is not a positive number"),
    (["--metrics-tls", "tls"], "--metrics-tls: tls applies to the metrics port, and none is given"),
    (["--metrics-port", "0", "--metrics-tls", "tls"], "--metrics-tls: tls serves the scaler's certificate: give "
                                                      "--tls-cert and --tls-key"),
    (["--extender-tls-cert", "cert.pem"], "--extender-tls-cert/--extender-tls-key: give both or neither"),
    (["--extender-client-ca", "ca.pem"], "--extender-client-ca: checks client certificates over HTTPS"),
    (["--extender-tls-cert", "missing.pem", "--extender-tls-key", "missing.key"],
     "--extender-tls-cert/--extender-tls-key: cannot load the certificate and key"),
    (["--set-deletion-cost"], "--set-deletion-cost: needs the Kubernetes API; the demo has no pods"),
])
def test_serving_flags_are_checked_before_anything_starts(capsys, monkeypatch, args, expected):
    """Found at once, not after the Kubernetes API's first lists (up to 20 s) or never: a zero
    resync period lists in a tight loop, an extender certificate that cannot load crash-loops."""
    monkeypatch.setattr(serve_cli, "_serve", lambda args: pytest.fail("started serving"))
    line = serve_error(capsys, "--demo", "--host", "127.0.0.1", "--grpc-port", "0", "--health-port", "0",
                       "--http-port", "0", *args)
    assert line.startswith(f"wattwise serve: error: {expected}"), line


def test_deletion_cost_qps_is_checked_before_the_cluster_is_watched(no_kube, tmp_path, capsys, monkeypatch):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    monkeypatch.setattr(serve_cli, "_serve", lambda args: pytest.fail("started serving"))
    line = serve_error(capsys, "--extender", "--kubeconfig", str(kubeconfig), "--http-port", "0",
                       "--set-deletion-cost", "--deletion-cost-qps", "0")
    assert line == ("wattwise serve: error: --deletion-cost-qps: 0.0 is not a positive number "
                    "(give PATCHes per second, e.g. 5)")


def test_a_missing_models_directory_is_said_as_missing_not_unwritable(tmp_path, capsys):
    missing = tmp_path / "models"
    line = serve_error(capsys, "--scaler", "--scenario", "scenarios/metro-retail.yaml", "--grpc-port", "0",
                       "--health-port", "0", "--prometheus", "http://127.0.0.1:9", "--models", str(missing))
    assert line == (f"wattwise serve: error: --models: {missing} is not a directory "
                    "(give the folder the refitter writes its models into)")


def test_the_shutdown_budget_shares_the_grace_among_the_parts():
    """Every part's stop waits at most its cap and what is left of --grace-s since the signal, so
    parts stopped first cannot push the whole past the kubelet's SIGKILL."""
    now = [100.0]
    budget = serve_cli.ShutdownBudget(20.0, clock=lambda: now[0])
    assert budget.left_s(5.0) == 5.0 and budget.left_s() == 20.0      # start-up unwinding: caps, within the grace
    budget.start()
    now[0] += 4.0                    # the extender and the refitter took 4 s
    assert budget.left_s() == 16.0 and budget.left_s(5.0) == 5.0
    now[0] += 15.5                   # the gRPC calls had what was left
    assert budget.left_s(5.0) == 0.5
    now[0] += 3.0
    assert budget.left_s(5.0) == 0.0


@pytest.mark.parametrize("args, expected", [
    (["--carbon-static", "-5"], "--carbon-static: must be a finite number >= 0, got -5.0"),
    (["--carbon-config", "/nonexistent/carbon.yaml"], "/nonexistent/carbon.yaml"),
    (["--models", "/nonexistent/models"], "--models: /nonexistent/models is not a directory"),
    (["--grid-zone-map", "/nonexistent/map.yaml"], "/nonexistent/map.yaml: cannot read the grid zone map"),
    (["--prometheus", "ftp://prometheus:9090"], "--prometheus"),
    (["--scenario", "no-such-scenario"], "no-such-scenario: cannot read the scenario file"),
])
def test_live_inputs_are_checked_before_the_cluster_is_watched(no_kube, tmp_path, capsys, monkeypatch, args, expected):
    """With the API unreachable, the watches' retries used to print some 20 lines before the one
    that names the bad flag; now it is the only line, and no watch starts."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    monkeypatch.setattr(serve_cli, "_start_cluster", lambda args: pytest.fail("watched the cluster"))
    line = serve_error(capsys, "--scaler", "--kubeconfig", str(kubeconfig), "--grpc-port", "0", "--health-port", "0",
                       *args)
    assert line.startswith("wattwise serve: error: ") and expected in line, line


def test_the_demo_printout_is_valid_yaml_for_an_ipv6_host(capsys):
    """`serve --demo --host ::1` printed `scalerAddress: [::1]:6000`, which YAML reads as a flow
    sequence and refuses; the address is quoted, in the YAML and in the scaler-call hint."""
    from types import SimpleNamespace

    import yaml

    from wattwise.models.scenario import load_scenario

    snapshot = load_scenario("metro-retail").snapshot
    serve_cli._print_demo(snapshot, SimpleNamespace(host="::1", scenario=None), 6000, 6001, None)
    out = capsys.readouterr().out
    blocks = re.findall(r"^(triggers:\n.*?)^# try:", out, flags=re.M | re.S)
    triggers = [yaml.safe_load(b) for b in blocks]
    assert triggers and all(t["triggers"][0]["metadata"]["scalerAddress"] == "[::1]:6000" for t in triggers)
    assert "--address '[::1]:6000'" in out


def test_a_kepler_zone_promql_cannot_quote_is_refused_before_anything_starts(capsys):
    """Not at the first refit, every period: at start, one line, exit 2."""
    assert serve_error(capsys, "--demo", "--kepler-zone", 'pack"age') == (
        "wattwise serve: error: --kepler-zone: 'pack\"age' is not a label value PromQL can quote (give letters, "
        "digits and _ . : / - only)")


def test_refits_asked_for_without_prometheus_are_said_to_be_off_at_start(tmp_path, caplog):
    from types import SimpleNamespace

    args = SimpleNamespace(refit_every="1h", refit_window="24h", scrape_interval="15s", kepler_zone="package",
                           workload_label="wattwise.io/workload", demo=False, prometheus=None, models=str(tmp_path))
    with caplog.at_level("WARNING", logger="wattwise.serve_cli"):
        assert serve_cli._refitter(args) is None
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("--refit-every 1h: no refits without --prometheus")
    caplog.clear()
    args.refit_every = None                       # the default 4h, not asked for: nothing to say
    with caplog.at_level("WARNING", logger="wattwise.serve_cli"):
        assert serve_cli._refitter(args) is None
    assert caplog.records == []


def test_serve_quiets_urllib3_retry_warnings_as_fit_does(monkeypatch, capsys):
    import logging

    logger = logging.getLogger("urllib3.connectionpool")
    monkeypatch.setattr(logger, "level", logging.NOTSET)
    main(["serve"])                                 # refused (no mode), after the logging set-up
    assert logger.getEffectiveLevel() == logging.ERROR
