"""A real Prometheus on 127.0.0.1 loaded with given series, for adapter tests.

Reusable by any test suite: `start_prometheus(openmetrics_text, workdir)` backfills the text with
`promtool tsdb create-blocks-from openmetrics`, starts Debian's `prometheus` on a free loopback
port with its storage in `workdir`, waits until it is ready and returns a `RunningPrometheus`
(`.url`, `.stop()`, `.kill()`). The text must be OpenMetrics, end with `# EOF`, keep each metric
family's samples together, and use timestamps in the past (e.g. ending an hour ago): promtool
only writes complete blocks and Prometheus must not treat them as out of retention (we pass a
retention of 100 years).

A Prometheus with a web configuration (`extra_args=("--web.config.file=...",)`: TLS, client
certificates, basic auth) is probed the way its clients must call it: `probe_tls` (an
`ssl.SSLContext` trusting its CA, holding a client certificate where one is required; the URL is
then https://) and `probe_headers` (e.g. an Authorization header).

`config_text` replaces the default configuration (no scrape configs): `tests/e2e/` gives scrape
configs for a live exporter, which Prometheus then scrapes instead of (or besides) backfilled data.

`tests/telemetry/conftest.py` wires it as the `prometheus_factory` pytest fixture. If the
binaries are missing the fixture fails (not skips): run `apt-get install prometheus`.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

PROMETHEUS_BIN = os.environ.get("WATTWISE_PROMETHEUS_BIN", "/usr/bin/prometheus")
PROMTOOL_BIN = os.environ.get("WATTWISE_PROMTOOL_BIN", "/usr/bin/promtool")
INSTALL_HINT = "install it with `apt-get install prometheus` (provides /usr/bin/prometheus and /usr/bin/promtool)"


class PrometheusFixtureError(RuntimeError):
    pass


def missing_binaries() -> list[str]:
    return [b for b in (PROMETHEUS_BIN, PROMTOOL_BIN) if not (Path(b).exists() and os.access(b, os.X_OK))
            and shutil.which(b) is None]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningPrometheus:
    url: str
    process: subprocess.Popen
    workdir: Path

    @property
    def log_text(self) -> str:
        path = self.workdir / "prometheus.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def kill(self) -> None:
        """SIGKILL, as a crash would: no clean shutdown."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def backfill(openmetrics_text: str, storage_dir: Path) -> None:
    if not openmetrics_text.rstrip().endswith("# EOF"):
        raise PrometheusFixtureError("OpenMetrics text must end with '# EOF'")
    storage_dir.mkdir(parents=True, exist_ok=True)
    src = storage_dir.parent / "backfill.om"
    src.write_text(openmetrics_text)
    done = subprocess.run([PROMTOOL_BIN, "tsdb", "create-blocks-from", "openmetrics", str(src), str(storage_dir)],
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise PrometheusFixtureError(f"promtool backfill failed: {done.stderr.strip()[-800:]}")


def start_prometheus(openmetrics_text: str | None, workdir: Path, ready_timeout_s: float = 30.0,
                     extra_args: tuple[str, ...] = (), probe_tls: ssl.SSLContext | None = None,
                     probe_headers: Mapping[str, str] | None = None,
                     config_text: str | None = None) -> RunningPrometheus:
    """Backfill `openmetrics_text` (if given) and start Prometheus on a free 127.0.0.1 port
    (https:// with `probe_tls`, which the readiness probe uses with `probe_headers`).
    `config_text`: the prometheus.yml to run (default: no scrape configs, 15 s global interval)."""
    missing = missing_binaries()
    if missing:
        raise PrometheusFixtureError(f"{', '.join(missing)} not found: {INSTALL_HINT}")
    workdir = Path(workdir)
    storage = workdir / "tsdb"
    if openmetrics_text is not None:
        backfill(openmetrics_text, storage)
    storage.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    config.write_text(config_text if config_text is not None else "global:\n  scrape_interval: 15s\nscrape_configs: []\n")
    port = free_port()
    log = open(workdir / "prometheus.log", "wb")
    process = subprocess.Popen(
        [PROMETHEUS_BIN, f"--config.file={config}", f"--storage.tsdb.path={storage}",
         "--storage.tsdb.retention.time=100y", f"--web.listen-address=127.0.0.1:{port}", *extra_args],
        stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    log.close()
    scheme = "https" if probe_tls is not None else "http"
    running = RunningPrometheus(url=f"{scheme}://127.0.0.1:{port}", process=process, workdir=workdir)
    probe = urllib.request.Request(f"{running.url}/-/ready", headers=dict(probe_headers or {}))
    deadline = time.monotonic() + ready_timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise PrometheusFixtureError(f"prometheus exited with {process.returncode}: {running.log_text[-800:]}")
        try:
            with urllib.request.urlopen(probe, timeout=1, context=probe_tls) as r:
                if r.status == 200:
                    return running
        except OSError:
            pass
        time.sleep(0.1)
    running.stop()
    raise PrometheusFixtureError(f"prometheus not ready after {ready_timeout_s}s: {running.log_text[-800:]}")


def prometheus_or_fail(openmetrics_text: str | None, workdir: Path) -> RunningPrometheus:
    """`start_prometheus` for a test fixture: a missing binary or a failed start fails the test
    with one line (Prometheus is a real component these tests need, never skipped)."""
    import pytest

    if missing_binaries():
        pytest.fail(f"prometheus not found: {INSTALL_HINT}", pytrace=False)
    try:
        return start_prometheus(openmetrics_text, workdir)
    except PrometheusFixtureError as e:
        pytest.fail(str(e), pytrace=False)
