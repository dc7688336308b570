"""The `--prometheus-*` client options refuse what cannot work before anything starts, in `wattwise
fit` and `wattwise serve` alike: one line, exit code 2, naming the flag and what to do, and never
echoing a secret (a token, a password, a header value, a key)."""

from __future__ import annotations

import subprocess
import threading

import pytest

from tests.scaler.certs import make_pki
from wattwise.cli import main
from wattwise.models import BUNDLED_SCENARIO
from wattwise.telemetry.prometheus.connection import PrometheusAuth

SECRET = "s3cr3t-value-7c1d"
URL = "https://prometheus.example:9090"




@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("auth-files")
    pki = make_pki(d / "pki", "flags")
    other = make_pki(d / "other", "other")
    subprocess.run(["openssl", "pkey", "-in", str(pki.client_key), "-aes256", "-passout", f"pass:{SECRET}",
                    "-out", str(d / "encrypted.key")], check=True, capture_output=True)
    for name, text in {"token": SECRET + "\n", "password": SECRET + "\n", "empty": "",
                       "two-words": f"Bearer {SECRET}\n", "garbage.pem": "not a certificate\n"}.items():
        (d / name).write_text(text)
    return d, pki, other


def run(capsys, command: str, *args: str) -> str:
    before = sorted(t.name for t in threading.enumerate())
    if command == "fit":
        argv = ["fit", "--out", "/nonexistent/never-written", *args]
    else:
        argv = ["serve", "--scaler", "--scenario", str(BUNDLED_SCENARIO), "--grpc-port", "0", "--health-port", "0",
                *args]
    rc = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert sorted(t.name for t in threading.enumerate()) == before     # nothing started
    assert SECRET not in err[0]
    return err[0].removeprefix(f"wattwise {command}: error: ")


def cases(d, pki, other):
    token, password = str(d / "token"), str(d / "password")
    return [
        (["--prometheus-bearer-token-file", str(d / "missing")],
         f"--prometheus-bearer-token-file: no such file: {d / 'missing'} (check the path and the volume mount)"),
        (["--prometheus-bearer-token-file", str(d / "empty")],
         f"--prometheus-bearer-token-file: {d / 'empty'} is empty (the file should hold the token)"),
        (["--prometheus-bearer-token-file", str(d / "two-words")],
         f"--prometheus-bearer-token-file: {d / 'two-words'} does not hold one token (it has spaces, line breaks or "
         "other characters a token cannot have) (the file should hold the token alone)"),
        (["--prometheus-bearer-token-file", str(d)], f"--prometheus-bearer-token-file: {d} is a directory "
                                                     "(give the file itself)"),
        (["--prometheus-key-file", str(pki.client_key)],
         "--prometheus-key-file: given without --prometheus-cert-file (give the client certificate the key belongs to)"),
        (["--prometheus-cert-file", str(pki.client_cert)],
         "--prometheus-cert-file: given without --prometheus-key-file (give the client certificate's private key too)"),
        (["--prometheus-cert-file", str(pki.client_cert), "--prometheus-key-file", str(other.client_key)],
         f"--prometheus-key-file: {other.client_key} is not the key of {pki.client_cert} "
         "(give the key that belongs to --prometheus-cert-file)"),
        (["--prometheus-cert-file", str(pki.client_cert), "--prometheus-key-file", str(d / "encrypted.key")],
         f"--prometheus-key-file: {d / 'encrypted.key'} is encrypted (give an unencrypted PEM key)"),
        (["--prometheus-ca-file", str(d / "garbage.pem")],
         f"--prometheus-ca-file: {d / 'garbage.pem'} holds no PEM CA certificate (give the PEM file of the CA that "
         "signed Prometheus's certificate)"),
        (["--prometheus-bearer-token-file", token, "--prometheus-basic-auth-user", "u",
          "--prometheus-basic-auth-password-file", password],
         "--prometheus-bearer-token-file: given with --prometheus-basic-auth-user (a request carries one "
         "Authorization header: give the token or basic auth)"),
        (["--prometheus-basic-auth-user", "u"],
         "--prometheus-basic-auth-user: given without --prometheus-basic-auth-password-file (basic auth needs the "
         "user and the file holding the password)"),
        (["--prometheus-basic-auth-user", f"u:{SECRET}", "--prometheus-basic-auth-password-file", password],
         "--prometheus-basic-auth-user: contains ':' or a control character (give the user name alone; the password "
         "goes in --prometheus-basic-auth-password-file)"),
        (["--prometheus-header", SECRET],
         "--prometheus-header: it has no ':' (not shown: it may hold a secret) (give 'Name: value', e.g. "
         "'X-Scope-OrgID: team-a')"),
        (["--prometheus-header", "X-Scope-OrgID: a", "--prometheus-header", f"X-Api-Key {SECRET}"],
         "--prometheus-header: the 2nd one has no ':' (not shown: it may hold a secret) (give 'Name: value', e.g. "
         "'X-Scope-OrgID: team-a')"),
        (["--prometheus-header", f"X Api Key: {SECRET}"],
         "--prometheus-header: it has no valid header name before ':' (give 'Name: value' with a name of letters, "
         "digits and '-')"),
        (["--prometheus-header", f"X-Api-Key: {SECRET}\r\nX-Evil: 1"],
         "--prometheus-header: the value of 'X-Api-Key' holds a line break, a control character or a non-ASCII "
         "character (give the value on one line, in ASCII)"),
        (["--prometheus-header", f"X-Api-Key: {SECRET}", "--prometheus-header", "x-api-key: b"],
         "--prometheus-header: 'x-api-key' is given twice (give each header once)"),
        (["--prometheus-bearer-token-file", token, "--prometheus-header", f"Authorization: Bearer {SECRET}"],
         "--prometheus-header: 'Authorization' is also set by --prometheus-bearer-token-file (give one of them)"),
    ]


@pytest.mark.parametrize("command", ["fit", "serve"])
def test_bad_options_are_one_line_naming_the_flag(files, capsys, command):
    d, pki, other = files
    for flags, expected in cases(d, pki, other):
        assert run(capsys, command, "--prometheus", URL, *flags) == expected, flags


@pytest.mark.parametrize("command", ["fit", "serve"])
def test_tls_files_with_an_http_url(files, capsys, command):
    d, pki, _ = files
    assert run(capsys, command, "--prometheus", "http://prometheus:9090", "--prometheus-ca-file", str(pki.ca_cert)) == (
        "--prometheus-ca-file: --prometheus is http://, so no TLS is used (give an https:// --prometheus URL, or "
        "leave --prometheus-ca-file out)")


@pytest.mark.parametrize("command", ["fit", "serve"])
def test_a_password_in_the_url(capsys, command):
    assert run(capsys, command, "--prometheus", f"https://wattwise:{SECRET}@prometheus:9090") == (
        "--prometheus: the URL holds a user and password (not shown: they would be in every log line naming the URL) "
        "(give the URL without them, and the user and password with --prometheus-basic-auth-user and "
        "--prometheus-basic-auth-password-file)")


def test_serve_options_without_prometheus(files, capsys):
    d, _, _ = files
    assert run(capsys, "serve", "--prometheus-bearer-token-file", str(d / "token")) == (
        "--prometheus-bearer-token-file: given without --prometheus (give --prometheus URL too)")


def test_an_unreadable_file(files, tmp_path, capsys):
    import os

    if os.geteuid() == 0:
        pytest.skip("root reads any file")
    path = tmp_path / "token"
    path.write_text(SECRET)
    path.chmod(0)
    assert run(capsys, "fit", "--prometheus", URL, "--prometheus-bearer-token-file", str(path)) == (
        f"--prometheus-bearer-token-file: cannot read {path} (Permission denied) (check the file's permissions for "
        "WattWise's user)")


def test_repr_and_describe_name_files_and_header_names_only():
    auth = PrometheusAuth(bearer_token_file="/var/run/secrets/tokens/prometheus", ca_file="/etc/ca.pem",
                          headers=(("X-Api-Key", SECRET),))
    for text in (repr(auth), auth.describe(), str([auth])):
        assert SECRET not in text
    assert auth.describe() == ("bearer token from /var/run/secrets/tokens/prometheus; CA /etc/ca.pem; "
                               "headers X-Api-Key")
    assert PrometheusAuth().describe() == "no credentials" and not PrometheusAuth().configured
