"""`wattwise scaler-call` refuses flags that cannot work with one line and exit 2, before it
dials: a client certificate without its key (gRPC used to abort the process), a CA file that
cannot be read (a traceback), metadata that is not KEY=VALUE (exit 1); and it calls a real
scaler on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from wattwise.cli import main

from .certs import make_pki
from .helpers import demo_ref

REPO = Path(__file__).resolve().parents[2]


def call_error(capsys, *args) -> str:
    rc = main(["scaler-call", "--name", "checkout-cams", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, (rc, err)
    return err[0]


def test_a_client_certificate_without_its_key_is_one_line_not_an_abort(tmp_path):
    """In a process of its own: gRPC aborted the whole process (exit 134) on this."""
    pki = make_pki(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "wattwise", "scaler-call", "--name", "x", "--address", "127.0.0.1:9",
                           "--ca-cert", str(pki.ca_cert), "--client-cert", str(pki.client_cert)],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "wattwise scaler-call: error: --client-cert/--client-key: give both or neither"], proc.stderr


def test_a_key_without_its_certificate(capsys):
    assert call_error(capsys, "--client-key", "client.key") == (
        "wattwise scaler-call: error: --client-cert/--client-key: give both or neither")


@pytest.mark.parametrize("flag", ["--ca-cert", "--client-cert", "--client-key"])
def test_a_file_that_cannot_be_read(tmp_path, capsys, flag):
    pki = make_pki(tmp_path)
    given = {"--ca-cert": str(pki.ca_cert), "--client-cert": str(pki.client_cert), "--client-key": str(pki.client_key)}
    given[flag] = str(tmp_path / "nope.pem")
    assert call_error(capsys, *(x for kv in given.items() for x in kv)) == (
        f"wattwise scaler-call: error: {flag}: cannot read {tmp_path / 'nope.pem'}: No such file or directory")


@pytest.mark.parametrize("flag, says", [("--ca-cert", "--ca-cert: {path}: not a PEM CA certificate"),
                                        ("--client-cert", "--client-cert/--client-key: {path} and ")])
def test_a_file_that_is_not_pem_is_one_line_before_dialling(tmp_path, capsys, flag, says):
    """As explain: gRPC used to log C-core lines, then fail to connect (UNAVAILABLE, exit 1)."""
    pki = make_pki(tmp_path)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("garbage\n")
    given = {"--ca-cert": str(pki.ca_cert), "--client-cert": str(pki.client_cert), "--client-key": str(pki.client_key)}
    given[flag] = str(garbage)
    line = call_error(capsys, "--address", "127.0.0.1:9", *(x for kv in given.items() for x in kv))
    assert line.startswith("wattwise scaler-call: error: " + says.format(path=garbage)), line


def test_metadata_without_an_equals_sign(capsys):
    assert call_error(capsys, "-m", "workload") == (
        "wattwise scaler-call: error: -m: 'workload' is not KEY=VALUE (e.g. -m workload=checkout-cams)")


def test_a_timeout_that_is_not_positive(capsys):
    assert call_error(capsys, "--timeout-s", "0") == (
        "wattwise scaler-call: error: --timeout-s: 0.0 is not a positive number (give seconds per call, e.g. 10)")


def test_it_calls_a_running_scaler_like_keda(demo, capsys):
    ref = demo_ref("retail/checkout-cams")
    flags = [x for k, v in ref.scalerMetadata.items() for x in ("-m", f"{k}={v}")]
    rc = main(["scaler-call", "--address", f"127.0.0.1:{demo.grpc_port}", "--name", ref.name,
               "--namespace", ref.namespace, "--json", *flags])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["metricSpecs"] and out["metricValues"] and "isActive" in out
