"""`--log-json` makes every line a log pipeline reads JSON: the start-up lines that say which
ports were chosen ("scheduler extender on port", "ready: ...") are log objects on stdout too,
where they were plain text beside the JSON log lines."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_start_up_lines_are_json_objects_under_log_json():
    cmd = [sys.executable, "-m", "wattwise", "--log-json", "serve", "--demo", "--host", "127.0.0.1",
           "--http-port", "0", "--grpc-port", "0", "--health-port", "0", "--extender-health-port", "0"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        announced, deadline = [], time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            if line.startswith("{"):
                announced.append(json.loads(line))
            elif "extender on port" in line or line.startswith("ready"):
                announced.append(line)          # plain: what this test is against
            if any(isinstance(a, dict) and a["msg"].startswith("ready") for a in announced) or \
                    any(isinstance(a, str) and a.startswith("ready") for a in announced):
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    assert [a["msg"].split(" on ")[0] if isinstance(a, dict) else a for a in announced] == \
        ["scheduler extender", "ready: scaler gRPC"], announced
    assert all(a["level"] == "INFO" and a["logger"] == "wattwise.serve_cli" for a in announced)
