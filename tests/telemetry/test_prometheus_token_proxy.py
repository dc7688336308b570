"""Bearer token and custom headers, which Prometheus itself does not check: a small reverse proxy on
loopback (as kube-rbac-proxy or a multi-tenant gateway stands in front of Prometheus) lets a
request through to a real Prometheus only with `Authorization: Bearer <the token it expects now>`
and the tenant header. The token file is rotated the way the kubelet rotates a projected
ServiceAccount token (a new file behind a swapped symlink), and the client follows without a
restart. The token and the header value never show in an error or a log line."""

from __future__ import annotations

import logging
import os
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.prometheus_fixture import prometheus_or_fail
from tests.telemetry.prom_auth_helpers import END_S, QUERY, Cluster, series
from wattwise import cli, serve_cli
from wattwise.scaler.demand import PromQLDemand
from wattwise.telemetry.prometheus import PrometheusClient, PrometheusQueryError, TelemetryError
from wattwise.telemetry.prometheus.connection import PrometheusAuth

TOKEN_A, TOKEN_B = "tok-A.eyJzdWIiOiJ3YXR0d2lzZSJ9.sigA", "tok-B.eyJzdWIiOiJ3YXR0d2lzZSJ9.sigB"
TENANT = "tenant-9d2e-not-for-logs"




class Gate:
    """A reverse proxy to `upstream`: 401 without the expected bearer token, 403 without
    `X-Scope-OrgID: TENANT`; records the Authorization values it saw."""

    def __init__(self, upstream: str):
        self.expected = TOKEN_A
        self.seen: list[str] = []
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                authorization = self.headers.get("Authorization", "")
                gate.seen.append(authorization)
                if authorization != f"Bearer {gate.expected}":
                    return self._reply(401, b"Unauthorized\n")
                if self.headers.get("X-Scope-OrgID") != TENANT:
                    return self._reply(403, b"Forbidden: no tenant\n")
                try:
                    with urllib.request.urlopen(upstream + self.path, timeout=10) as r:
                        self._reply(r.status, r.read(), r.headers.get("Content-Type", "application/json"))
                except urllib.error.HTTPError as e:
                    self._reply(e.code, e.read())

            def _reply(self, status, body, content_type="text/plain"):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def gate(tmp_path_factory):
    prom = prometheus_or_fail(series(), tmp_path_factory.mktemp("prom"))
    g = Gate(prom.url)
    yield g
    g.close()
    prom.stop()


class ProjectedToken:
    """A token file as the kubelet writes a projected volume: `token` -> `..data/token`, and
    `..data` a symlink swapped atomically to a new timestamped directory on each rotation."""

    def __init__(self, d: Path, token: str):
        self.d, self.n = d, 0
        d.mkdir()
        (d / "token").symlink_to("..data/token")
        self.rotate(token)

    @property
    def path(self) -> str:
        return str(self.d / "token")

    def rotate(self, token: str) -> None:
        self.n += 1
        version = self.d / f"..2024_01_01_00_00_0{self.n}"
        version.mkdir()
        (version / "token").write_text(token + "\n")
        tmp = self.d / "..data_tmp"
        tmp.symlink_to(version.name)
        os.replace(tmp, self.d / "..data")


def auth_for(path: str) -> PrometheusAuth:
    return PrometheusAuth(bearer_token_file=path, headers=(("X-Scope-OrgID", TENANT),))


def test_token_and_header_pass_the_gate_and_the_token_rotates(gate, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    gate.expected = TOKEN_A
    token = ProjectedToken(tmp_path / "sa", TOKEN_A)
    auth = auth_for(token.path)
    auth.check(gate.url)
    client = PrometheusClient(gate.url, timeout_s=5, retries=0, auth=auth)
    assert float(client.instant(QUERY, at_s=END_S)[0].values[-1]) == 48

    token.rotate(TOKEN_B)                      # the kubelet rotates; the gate now wants the new one
    gate.expected = TOKEN_B
    assert float(client.instant(QUERY, at_s=END_S)[0].values[-1]) == 48
    assert gate.seen[-2:] == [f"Bearer {TOKEN_A}", f"Bearer {TOKEN_B}"]

    gate.expected = "something-else"            # a token the gate no longer accepts
    with pytest.raises(PrometheusQueryError) as e:
        client.instant(QUERY, at_s=END_S)
    assert e.value.status == 401 and f"bearer token from {token.path}" in str(e.value)
    for secret in (TOKEN_A, TOKEN_B, TENANT):
        assert secret not in caplog.text + str(e.value) + repr(auth) + auth.describe()
    gate.expected = TOKEN_A


def test_without_the_header_the_gate_forbids(gate, tmp_path):
    (tmp_path / "token").write_text(TOKEN_A)
    client = PrometheusClient(gate.url, timeout_s=5, retries=0,
                              auth=PrometheusAuth(bearer_token_file=str(tmp_path / "token")))
    with pytest.raises(PrometheusQueryError) as e:
        client.instant(QUERY, at_s=END_S)
    assert e.value.status == 403 and "not allowed to query" in str(e.value) and TOKEN_A not in str(e.value)


def test_a_token_file_gone_mid_run_is_a_retryable_error_then_recovers(gate, tmp_path):
    gate.expected = TOKEN_A
    path = tmp_path / "token"
    path.write_text(TOKEN_A)
    demand = PromQLDemand(gate.url, timeout_s=5, retries=0, auth=auth_for(str(path)))
    assert demand.read(QUERY, END_S).value == 48
    path.unlink()
    reading = demand.read(QUERY, END_S)
    assert not reading.ok and reading.note.startswith("--prometheus-bearer-token-file: cannot read"), reading
    client = PrometheusClient(gate.url, timeout_s=5, retries=0, auth=auth_for(str(path)))
    path.write_text("two words\n")             # a half-written or wrong file: refused, not echoed
    with pytest.raises(TelemetryError) as e:
        client.instant(QUERY, at_s=END_S)
    assert e.value.retryable and "does not hold one token" in str(e.value) and "two words" not in str(e.value)
    path.write_text(TOKEN_A + "\n")
    assert demand.read(QUERY, END_S).value == 48


def test_serve_and_fit_flags_reach_the_gate(gate, tmp_path, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    gate.expected = TOKEN_A
    (tmp_path / "token").write_text(TOKEN_A + "\n")
    options = ["--prometheus-bearer-token-file", str(tmp_path / "token"), "--prometheus-header",
               f"X-Scope-OrgID: {TENANT}"]
    parser, _ = cli.build_parser("serve")
    args = parser.parse_args(["serve", "--scaler", "--prometheus", gate.url, *options])
    serve_cli.check_prometheus(args)
    assert serve_cli._demand_port(args).read(QUERY, END_S).value == 48
    assert serve_cli._replica_fps(args, Cluster()).read(END_S)[0].delivered_fps == 14.0

    rc = cli.main(["fit", "--prometheus", gate.url, *options, "--start", str(END_S - 600), "--end", str(END_S),
                   "--out", str(tmp_path / "out"), "--retries", "0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 2, err
    assert "--prometheus is http://: the Prometheus credentials" in err[0] and "travel unencrypted" in err[0]
    assert err[1].startswith("wattwise fit: error:") and "Kepler" in err[1], err   # through the gate, to no data
    for secret in (TOKEN_A, TENANT):
        assert secret not in caplog.text + "\n".join(err)


def test_the_prometheus_carbon_provider_sends_the_token_file_and_headers(gate, tmp_path, caplog):
    from wattwise.telemetry.carbon.errors import CarbonProviderError
    from wattwise.telemetry.carbon.factory import build_provider, parse_carbon_settings

    caplog.set_level(logging.DEBUG)
    gate.expected = TOKEN_A
    token = ProjectedToken(tmp_path / "sa", TOKEN_A)
    provider = build_provider(parse_carbon_settings({
        "provider": "prometheus", "base_url": gate.url, "query": "grid_carbon_intensity",
        "bearer_token_file": token.path, "headers": {"X-Scope-OrgID": TENANT}}))
    assert provider.fetch("DE", END_S).g_per_kwh == 312.5
    token.rotate(TOKEN_B)
    gate.expected = TOKEN_B
    assert provider.fetch("DE", END_S).g_per_kwh == 312.5
    os.unlink(token.d / "..data")              # the volume gone
    with pytest.raises(CarbonProviderError) as e:
        provider.fetch("DE", END_S)
    assert e.value.retryable and "carbon.bearer_token_file: cannot read" in str(e.value)
    for secret in (TOKEN_A, TOKEN_B, TENANT):
        assert secret not in caplog.text + str(e.value)
    gate.expected = TOKEN_A
