"""The extender's certificate, key and client CA follow their files: a renewal mounted the way the
kubelet mounts a Secret (files behind a `..data` symlink swapped at once) is used by the next
connection, connections already open keep working, a broken renewal keeps the old certificate
with one warning naming the file, and a client without a certificate is refused under mTLS."""

from __future__ import annotations

import argparse
import http.client
import logging
import os
import shutil
import socket
import ssl
from pathlib import Path

import pytest

from tests.scheduler.tls_certs import Certs, make_certs
from wattwise.scheduler.server import add_extender_arguments, start_extender_from_args

SECRET_KEYS = ("tls.crt", "tls.key", "ca.crt")


class SecretMount:
    """A folder laid out as the kubelet mounts a Secret: `tls.crt -> ..data/tls.crt`, `..data ->
    ..<timestamp>`; `update` writes a new timestamped folder and swaps `..data` in one rename."""

    def __init__(self, d: Path, files: dict[str, Path]):
        self.dir = d
        d.mkdir(parents=True)
        self._n = 0
        self.update(files)
        for name in files:
            os.symlink(f"..data/{name}", d / name)

    def update(self, files: dict[str, Path]) -> None:
        self._n += 1
        version = self.dir / f"..2026_01_01_00_00_{self._n:02d}"
        version.mkdir()
        for name, src in files.items():
            shutil.copy(src, version / name)
        old = os.readlink(self.dir / "..data") if (self.dir / "..data").is_symlink() else None
        os.symlink(version.name, self.dir / "..data_tmp")
        os.replace(self.dir / "..data_tmp", self.dir / "..data")
        if old:
            shutil.rmtree(self.dir / old)

    def path(self, name: str) -> Path:
        return self.dir / name


def secret(c: Certs, key: Path | None = None) -> dict[str, Path]:
    return {"tls.crt": c.server_cert, "tls.key": key or c.server_key, "ca.crt": c.ca}


def der(pem: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem.read_text())


@pytest.fixture(scope="module")
def pkis(tmp_path_factory):
    made = [make_certs(tmp_path_factory.mktemp(name)) for name in ("old", "new")]
    if None in made:
        pytest.skip("openssl is not installed")
    return made


def client(trust: Certs, cert: Certs | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(trust.ca))
    if cert is not None:
        ctx.load_cert_chain(str(cert.client_cert), str(cert.client_key))
    return ctx


def connect(port: int, ctx: ssl.SSLContext) -> http.client.HTTPSConnection:
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    conn.connect()
    return conn


def healthz(conn: http.client.HTTPSConnection) -> int:
    conn.request("GET", "/healthz")
    resp = conn.getresponse()
    resp.read()
    return resp.status


def start(source, mount: SecretMount):
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--demo", action="store_true")
    add_extender_arguments(parser)
    return start_extender_from_args(parser.parse_args(["--demo", "--http-port", "0",
                                           "--extender-tls-cert", str(mount.path("tls.crt")),
                                           "--extender-tls-key", str(mount.path("tls.key")),
                                           "--extender-client-ca", str(mount.path("ca.crt"))]), source)


def refused(port: int, ctx: ssl.SSLContext) -> bool:
    try:
        conn = connect(port, ctx)
        try:
            healthz(conn)      # TLS 1.3: the server checks the client certificate after the client's handshake
        finally:
            conn.close()
    except (ssl.SSLError, ConnectionError, http.client.HTTPException):
        return True
    return False


def test_renewed_files_serve_new_connections_and_open_ones_keep_working(source, pkis, tmp_path):
    old, new = pkis
    mount = SecretMount(tmp_path / "tls", secret(old))
    handle = start(source, mount)
    try:
        before = connect(handle.port, client(old, old))
        assert healthz(before) == 200 and before.sock.getpeercert(binary_form=True) == der(old.server_cert)
        sock = before.sock

        mount.update(secret(new))            # cert-manager renewed the Secret under a new CA
        after = connect(handle.port, client(new, new))
        assert healthz(after) == 200 and after.sock.getpeercert(binary_form=True) == der(new.server_cert)
        after.close()
        assert refused(handle.port, client(new, old)), "the old CA's client certificate is no longer trusted"
        assert refused(handle.port, client(old, old)), "the old certificate is no longer served"

        assert healthz(before) == 200 and before.sock is sock     # the connection opened before, not dropped
        before.close()
    finally:
        handle.stop(2.0)


def test_a_client_without_a_certificate_is_refused(source, pkis, tmp_path):
    old, _ = pkis
    handle = start(source, SecretMount(tmp_path / "tls", secret(old)))
    try:
        assert refused(handle.port, client(old, None))
        conn = connect(handle.port, client(old, old))
        assert healthz(conn) == 200
        conn.close()
    finally:
        handle.stop(2.0)


def test_a_broken_renewal_keeps_the_old_certificate_with_one_warning(source, pkis, tmp_path, caplog):
    old, new = pkis
    mount = SecretMount(tmp_path / "tls", secret(old))
    handle = start(source, mount)
    try:
        # WattWise's loggers only: grpc logs an AioServer it is freeing at DEBUG, and a record
        # kept by caplog would free it a second time (a segfault at teardown)
        caplog.set_level(logging.DEBUG, logger="wattwise")
        mount.update(secret(new, key=old.server_key))     # the new certificate with a key that is not its own
        for _ in range(3):
            conn = connect(handle.port, client(old, old))
            assert healthz(conn) == 200 and conn.sock.getpeercert(binary_form=True) == der(old.server_cert)
            conn.close()
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1, warnings
        assert str(mount.path("tls.key")) in warnings[0] and "does not match" in warnings[0]
        assert "-----BEGIN" not in caplog.text

        mount.update(secret(new))                          # fixed: the next connection takes it
        conn = connect(handle.port, client(new, new))
        assert healthz(conn) == 200 and conn.sock.getpeercert(binary_form=True) == der(new.server_cert)
        conn.close()
        assert any("reloaded" in r.getMessage() for r in caplog.records)
    finally:
        handle.stop(2.0)


def test_missing_or_broken_files_at_start_name_the_flag(source, pkis, tmp_path):
    old, new = pkis
    with pytest.raises(ValueError, match=r"--extender-tls-cert/--extender-tls-key: .*tls.key.*does not match"):
        start(source, SecretMount(tmp_path / "a", secret(new, key=old.server_key)))
    mount = SecretMount(tmp_path / "b", {"tls.crt": old.server_cert, "tls.key": old.server_key,
                                         "ca.crt": old.server_key})
    with pytest.raises(ValueError, match=r"--extender-client-ca: .*ca.crt: not a PEM CA certificate"):
        start(source, mount)


def get_healthz(port: int, ctx: ssl.SSLContext, session: ssl.SSLSession | None = None):
    """GET /healthz on a new TLS connection (resuming `session` if given): (status line, session, reused)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            reply = b""
            while chunk := s.recv(4096):
                reply += chunk
            return reply.split(b"\r\n", 1)[0], s.session, s.session_reused


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_a_session_made_before_a_ca_rotation_is_not_resumed(source, pkis, tmp_path, version):
    """A resumed TLS session skips the client certificate check: none is resumed, so a client the
    new CA does not trust cannot slip in on a session from before the rotation."""
    old, new = pkis
    mount = SecretMount(tmp_path / "tls", secret(old))
    handle = start(source, mount)
    try:
        ctx = client(old, old)
        ctx.load_verify_locations(str(new.ca))       # trusts both servers: only its own certificate is at stake
        ctx.maximum_version = version
        status, session, _ = get_healthz(handle.port, ctx)
        assert status == b"HTTP/1.1 200 OK"
        mount.update(secret(new))
        try:
            status, _, resumed = get_healthz(handle.port, ctx, session)
        except (ssl.SSLError, ConnectionError):   # TLS 1.2: refused in the handshake
            status, resumed = b"", False
        assert (status, resumed) == (b"", False)   # TLS 1.3: the connection closes before an answer
    finally:
        handle.stop(2.0)
