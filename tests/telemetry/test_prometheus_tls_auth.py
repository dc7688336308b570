"""Every Prometheus client WattWise makes, against a real Prometheus behind its own web
configuration: TLS with a client certificate required (RequireAndVerifyClientCert) and basic auth
(bcrypt). With the `--prometheus-*` options they read; without one piece they fail with one
clear error naming what to check; no password or key ever shows in an error or a log line."""

from __future__ import annotations

import logging

import pytest

from tests.prometheus_fixture import PrometheusFixtureError, missing_binaries, start_prometheus, INSTALL_HINT
from tests.scaler.certs import make_pki
from tests.telemetry.prom_auth_helpers import (END_S, QUERY, Cluster, client_tls, series, web_config)
from wattwise import cli, serve_cli
from wattwise.scaler.demand import PromQLDemand
from wattwise.telemetry.carbon.errors import CarbonProviderError, CarbonSettingsError
from wattwise.telemetry.carbon.factory import build_provider, parse_carbon_settings
from wattwise.telemetry.prometheus import PrometheusClient, PrometheusQueryError, PrometheusUnavailable
from wattwise.telemetry.prometheus.connection import PrometheusAuth
from wattwise.telemetry.prometheus.replica_fps import PrometheusReplicaFps

USER, PASSWORD = "wattwise", "pw-7f3a-not-for-logs"




@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    if missing_binaries():
        pytest.fail(f"prometheus not found: {INSTALL_HINT}", pytrace=False)
    d = tmp_path_factory.mktemp("prom-tls")
    pki = make_pki(d / "pki", "prom")
    password_file = d / "password"
    password_file.write_text(PASSWORD + "\n")
    wrong_password_file = d / "wrong-password"
    wrong_password_file.write_text("not-the-password\n")
    config = web_config(d / "web.yml", pki, {USER: PASSWORD})
    import base64

    basic = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    try:
        prom = start_prometheus(series(), d / "prom", extra_args=(f"--web.config.file={config}",),
                                probe_tls=client_tls(pki), probe_headers={"Authorization": basic})
    except PrometheusFixtureError as e:
        pytest.fail(str(e), pytrace=False)
    yield prom, pki, password_file, wrong_password_file
    prom.stop()


def full_auth(pki, password_file, **override) -> PrometheusAuth:
    fields = dict(ca_file=str(pki.ca_cert), cert_file=str(pki.client_cert), key_file=str(pki.client_key),
                  basic_auth_user=USER, basic_auth_password_file=str(password_file))
    fields.update(override)
    return PrometheusAuth(**fields)


def flags(pki, password_file) -> list[str]:
    return ["--prometheus-ca-file", str(pki.ca_cert), "--prometheus-cert-file", str(pki.client_cert),
            "--prometheus-key-file", str(pki.client_key), "--prometheus-basic-auth-user", USER,
            "--prometheus-basic-auth-password-file", str(password_file)]


def key_lines(pki) -> list[str]:
    return [line for line in pki.client_key.read_text().splitlines() if line and not line.startswith("-----")]


def assert_no_secret(text: str, pki) -> None:
    assert PASSWORD not in text
    assert not any(line in text for line in key_lines(pki))


def test_the_client_reads_over_mutual_tls_with_basic_auth(setup, caplog):
    prom, pki, password_file, _ = setup
    caplog.set_level(logging.DEBUG)
    assert prom.url.startswith("https://")
    auth = full_auth(pki, password_file)
    auth.check(prom.url)
    with PrometheusClient(prom.url, timeout_s=5, auth=auth) as client:
        assert client.ready()
        [s] = client.instant(QUERY, at_s=END_S)
        assert float(s.values[-1]) == 48
    assert_no_secret(caplog.text, pki)


@pytest.mark.parametrize("missing, expected", [
    ("ca_file", "TLS failed (certificate verify failed"),
    ("cert_file", "TLS failed ("),
    ("basic_auth", "refused with HTTP 401"),
    ("wrong_password", "refused with HTTP 401"),
])
def test_each_missing_piece_is_one_clear_error(setup, caplog, missing, expected):
    prom, pki, password_file, wrong_password_file = setup
    caplog.set_level(logging.DEBUG)
    override = {"ca_file": dict(ca_file=None), "cert_file": dict(cert_file=None, key_file=None),
                "basic_auth": dict(basic_auth_user=None, basic_auth_password_file=None),
                "wrong_password": dict(basic_auth_password_file=str(wrong_password_file))}[missing]
    client = PrometheusClient(prom.url, timeout_s=5, retries=0, auth=full_auth(pki, password_file, **override))
    error_type = PrometheusQueryError if "401" in expected else PrometheusUnavailable
    with pytest.raises(error_type) as e:
        client.instant(QUERY, at_s=END_S)
    message = str(e.value)
    assert expected in message and "\n" not in message, message
    if missing in ("ca_file", "cert_file"):
        assert "--prometheus-ca-file" in message and "--prometheus-cert-file" in message
    else:
        assert "credentials sent" in message and "--prometheus-basic-auth-password-file" in message
    assert_no_secret(message + caplog.text, pki)
    assert "not-the-password" not in message + caplog.text


def test_demand_and_replica_fps_use_the_options(setup):
    prom, pki, password_file, _ = setup
    auth = full_auth(pki, password_file)
    demand = PromQLDemand(prom.url, timeout_s=5, auth=auth)
    assert demand.read(QUERY, END_S).value == 48
    no_auth = PromQLDemand(prom.url, timeout_s=5, retries=0)
    reading = no_auth.read(QUERY, END_S)
    assert not reading.ok and "TLS failed" in reading.note
    [sample] = PrometheusReplicaFps(prom.url, Cluster().workload_pods(), auth=auth).read(END_S)
    assert (sample.delivered_fps, sample.drop_fps) == (14.0, 3.0)


def test_serve_builds_every_prometheus_client_with_the_flags(setup, tmp_path):
    prom, pki, password_file, _ = setup
    parser, _ = cli.build_parser("serve")
    args = parser.parse_args(["serve", "--scaler", "--prometheus", prom.url, "--models", str(tmp_path),
                              *flags(pki, password_file)])
    serve_cli.check_prometheus(args)
    assert args.prometheus_auth == full_auth(pki, password_file)
    assert serve_cli._demand_port(args).read(QUERY, END_S).value == 48
    [sample] = serve_cli._replica_fps(args, Cluster()).read(END_S)
    assert sample.delivered_fps == 14.0
    refitter = serve_cli._refitter(args)
    assert refitter.job.prometheus_auth == args.prometheus_auth


def carbon_settings(prom, pki, password_file, **override):
    raw = {"provider": "prometheus", "base_url": prom.url, "query": "grid_carbon_intensity", "timeout_s": 5,
           "ca_file": str(pki.ca_cert), "cert_file": str(pki.client_cert), "key_file": str(pki.client_key),
           "basic_auth_user": USER, "basic_auth_password_file": str(password_file)}
    raw.update(override)
    return parse_carbon_settings({k: v for k, v in raw.items() if v is not None})


def test_the_prometheus_carbon_provider_takes_the_same_options(setup, caplog):
    prom, pki, password_file, wrong_password_file = setup
    caplog.set_level(logging.DEBUG)
    provider = build_provider(carbon_settings(prom, pki, password_file))
    reading = provider.fetch("DE", END_S)
    assert (reading.g_per_kwh, reading.source) == (312.5, "prometheus")
    wrong = build_provider(carbon_settings(prom, pki, password_file, basic_auth_password_file=str(wrong_password_file)))
    with pytest.raises(CarbonProviderError) as e:
        wrong.fetch("DE", END_S)
    assert e.value.status == 401 and not e.value.retryable and "basic_auth_password_file" in str(e.value)
    no_cert = build_provider(carbon_settings(prom, pki, password_file, cert_file=None, key_file=None))
    with pytest.raises(CarbonProviderError) as e:
        no_cert.fetch("DE", END_S)
    assert e.value.retryable and "SSLError" in str(e.value)
    with pytest.raises(CarbonSettingsError) as e:
        build_provider(carbon_settings(prom, pki, password_file, cert_file=None))
    assert str(e.value) == ("carbon.key_file: given without carbon.cert_file (give the client certificate the key "
                            "belongs to)")
    with pytest.raises(CarbonSettingsError) as e:
        build_provider(carbon_settings(prom, pki, password_file, bearer_token="inline-token"))
    assert str(e.value).startswith("carbon.bearer_token: given with carbon.basic_auth_user")
    assert_no_secret(caplog.text, pki)


def test_fit_reaches_prometheus_with_the_flags(setup, tmp_path, capsys):
    """No Kepler series here: with the flags `wattwise fit` gets as far as saying so; without the
    client certificate it stops at TLS. Either way one line, no secret."""
    prom, pki, password_file, _ = setup
    window = ["--start", str(END_S - 600), "--end", str(END_S), "--out", str(tmp_path / "out"), "--retries", "0"]
    rc = cli.main(["fit", "--prometheus", prom.url, *flags(pki, password_file), *window])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert "Kepler" in err[0] and "TLS" not in err[0] and "401" not in err[0], err
    without_cert = [f for f in flags(pki, password_file)
                    if f not in ("--prometheus-cert-file", "--prometheus-key-file", str(pki.client_cert),
                                 str(pki.client_key))]
    rc = cli.main(["fit", "--prometheus", prom.url, *without_cert, *window])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "TLS failed" in err[0], err
    assert_no_secret(err[0], pki)
