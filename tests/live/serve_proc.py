"""`wattwise serve` as a process against the fake Kubernetes API, as a cluster runs it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import grpc

from wattwise.scaler.proto import externalscaler_pb2 as pb
from wattwise.scaler.proto import externalscaler_pb2_grpc as pb_grpc

REPO = Path(__file__).parents[2]


def write_kubeconfig(path: Path, server: str) -> Path:
    path.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: fake, cluster: {{server: "{server}"}}}}]
users: [{{name: test, user: {{}}}}]
contexts: [{{name: fake, context: {{cluster: fake, user: test}}}}]
current-context: fake
""")
    return path


@dataclass
class Served:
    proc: subprocess.Popen
    stderr: Path
    http_port: int | None
    grpc_port: int | None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.http_port}{path}"

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(self.url(path), timeout=10) as resp:
            return json.load(resp)

    def post(self, path: str, doc: dict):
        req = urllib.request.Request(self.url(path), json.dumps(doc).encode(),
                                     {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.load(resp)

    def log(self) -> str:
        return self.stderr.read_text()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                return self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()

    def metrics(self, name: str, namespace: str, metadata: dict[str, str]) -> float:
        """What KEDA reads: GetMetricSpec, then GetMetrics with the metric name it returned."""
        with grpc.insecure_channel(f"127.0.0.1:{self.grpc_port}") as channel:
            stub = pb_grpc.ExternalScalerStub(channel)
            so = pb.ScaledObjectRef(name=name, namespace=namespace, scalerMetadata=metadata)
            spec = stub.GetMetricSpec(so, timeout=10)
            got = stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=so, metricName=spec.metricSpecs[0].metricName),
                                  timeout=10)
            return got.metricValues[0].metricValueFloat


def serve(tmp_path: Path, args: list[str]) -> Served:
    """Start `wattwise serve ARGS` and wait for its "ready" line (ports from its output)."""
    stderr = tmp_path / "serve.log"
    proc = subprocess.Popen([sys.executable, "-m", "wattwise", *args], stdout=subprocess.PIPE,
                            stderr=open(stderr, "wb"), text=True, cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    http = grpc_port = None
    for line in proc.stdout:
        if line.startswith("{"):        # --log-json: the start-up lines are log objects too
            line = json.loads(line)["msg"]
        if m := re.match(r"scheduler extender on port (\d+)", line):
            http = int(m.group(1))
        if m := re.match(r"ready: scaler gRPC on [^:]+:(\d+)", line):
            grpc_port = int(m.group(1))
            break
        if line.startswith("ready"):
            break
    else:
        raise AssertionError(f"wattwise serve ended before it was ready:\n{stderr.read_text()}")
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    return Served(proc, stderr, http, grpc_port)
