"""`wattwise serve --demo` from the command line: the extender beside the scaler, on the bundled
scenario, answering a kube-scheduler-shaped client over a real socket; and the extender before
any plan exists."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from wattwise.scheduler.node_cache import StaticNodeCache
from wattwise.scheduler.server import start_extender

from .helpers import REPO, args_names, get, passed_names, post, recorded_node_list, recorded_pods


@pytest.mark.slow
def test_wattwise_serve_demo_serves_the_extender():
    cmd = [sys.executable, "-m", "wattwise", "serve", "--demo", "--host", "127.0.0.1", "--http-port", "0",
           "--grpc-port", "0", "--health-port", "0"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        port, seen, deadline = None, [], time.monotonic() + 60
        while port is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            m = re.search(r"scheduler extender on port (\d+)", line)
            port = int(m.group(1)) if m else None
        assert port, "".join(seen)
        url = f"http://127.0.0.1:{port}"
        pod = {"metadata": {"name": "c-1", "namespace": "retail", "labels": {"wattwise.io/workload": "checkout-cams"}},
               "spec": {"runtimeClassName": "kata-qemu-tdx"}}
        status, reply = post(url + "/filter", args_names(pod, ["de-spr-1", "de-icx-1", "us-milan-1"]))
        assert status == 200 and passed_names(reply) == ["de-spr-1"]
        status, scores = post(url + "/prioritize", args_names(pod, ["de-spr-1", "de-spr-5"]))
        assert status == 200 and {s["Host"] for s in scores} == {"de-spr-1", "de-spr-5"}
        assert get(url + "/readyz")[0] == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class NoPlanYet:
    def current(self):
        raise RuntimeError("no plan yet: the first refresh has not finished")


def test_before_the_first_plan_confidential_pods_still_get_the_tee_check():
    nodes = recorded_node_list()["items"]
    handle = start_extender(NoPlanYet(), "127.0.0.1", 0, StaticNodeCache.from_node_json(nodes))
    try:
        pods = recorded_pods()
        names = [n["metadata"]["name"] for n in nodes]
        _, reply = post(handle.url + "/filter", args_names(pods["managed_tdx"], names))
        assert passed_names(reply) == ["spr-tdx-1", "spr-tdx-2", "spr-tdx-cordoned"]
        _, reply = post(handle.url + "/filter", args_names(pods["unmanaged_plain"], names))
        assert passed_names(reply) == names
        assert post(handle.url + "/prioritize", args_names(pods["managed_tdx"], names)) == (200, [])
        status, text = get(handle.url + "/readyz")   # ready: the TEE check needs the nodes, not a plan
        assert status == 200 and "no plan yet" in text and "pods are checked, not scored" in text
    finally:
        handle.stop(2.0)
