"""`wattwise serve --demo` as a process: SIGTERM with a push stream open ends it with OK, exit 0."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import grpc

from tests.scaler.helpers import demo_ref
from wattwise.scaler.proto import externalscaler_pb2_grpc as pb_grpc

GRACE_S = 3


def test_sigterm_closes_streams_ok_and_exits_zero(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "wattwise", "serve", "--demo", "--host", "127.0.0.1", "--grpc-port", "0",
         "--health-port", "0", "--http-port", "0", "--grace-s", str(GRACE_S)],
        stdout=subprocess.PIPE, stderr=open(tmp_path / "stderr.log", "wb"), text=True, env=env,
        cwd=Path(__file__).resolve().parents[2])
    try:
        port = None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            m = re.match(r"ready: scaler gRPC on 127\.0\.0\.1:(\d+)", line)
            if m:
                port = int(m.group(1))
                break
        assert port, "".join(lines) + (tmp_path / "stderr.log").read_text()
        assert any("metadata:" in line for line in lines) and any("workload: 'checkout-cams'" in line for line in lines)
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = pb_grpc.ExternalScalerStub(channel).StreamIsActive(demo_ref("retail/checkout-cams"))
            assert next(call).result is True            # open and active
            proc.send_signal(signal.SIGTERM)
            assert list(call) == []
            assert call.code() == grpc.StatusCode.OK
        assert proc.wait(timeout=GRACE_S + 5) == 0         # exits within the grace period (+ interpreter exit)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
