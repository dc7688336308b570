"""One KubeCluster per process: the extender's node cache and short classes, the scaler's pod
counts and the deletion-cost reconciler read the same stores, so each resource is listed once."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import pytest

from tests.kube_fake import RESOURCES, FakeKubeApi, kube_cluster, wait_until
from tests.scaler.helpers import ref
from wattwise.models.scenario import load_scenario
from wattwise.runtime import StaticPlanSource
from wattwise.scaler.pod_counts import PodCounts, kube_pod_counts
from wattwise.scaler.proto import externalscaler_pb2_grpc as pb_grpc
from wattwise.scheduler.server import add_extender_arguments, start_extender_from_args

REPO = Path(__file__).resolve().parents[2]
NAMES = [name for name, *_ in RESOURCES]
CHECKOUT = "retail/checkout-cams"
TDX_POD = {"metadata": {"name": "checkout-cams-7c9d8f6b4-zz9zz", "namespace": "retail",
                        "labels": {"app": "checkout-cams", "wattwise.io/workload": "checkout-cams"}},
           "spec": {"runtimeClassName": "kata-qemu-tdx", "schedulerName": "wattwise-scheduler",
                    "containers": [{"name": "inference", "image": "registry.example.com/retail/detector:2.3.1-bf16",
                                    "resources": {"requests": {"cpu": "4", "memory": "8Gi"}}}]}}


def post_json(url: str, doc: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(doc).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def active(stub, scaled_object) -> bool:
    try:
        return stub.IsActive(scaled_object).result
    except grpc.RpcError as e:
        if e.code() == grpc.StatusCode.UNAVAILABLE:    # registered, not planned yet
            return False
        raise


def test_the_extender_and_the_scaler_share_one_cluster():
    api = FakeKubeApi.recorded().start()
    cluster = kube_cluster(api).start()
    source = StaticPlanSource(load_scenario(REPO / "scenarios" / "metro-retail.yaml").snapshot)
    parser = argparse.ArgumentParser()
    add_extender_arguments(parser)
    args = parser.parse_args(["--http-port", "0"])
    args.host, args.demo = "127.0.0.1", False
    handle = start_extender_from_args(args, source, cluster)
    try:
        pods = kube_pod_counts(cluster)
        assert isinstance(pods, PodCounts) and handle.service.replica_counts is pods   # one view, both doors
        assert cluster.wait_synced(10)
        running, ready = pods.running_and_ready(CHECKOUT)
        assert (dict(running), dict(ready)) == ({"spr-tdx-1": 1, "spr-tdx-2": 1}, {"spr-tdx-1": 1})
        # the extender's node cache is the node store: names only, as with nodeCacheCapable
        reply = post_json(handle.url + "/filter", {"Pod": TDX_POD, "NodeNames": ["spr-tdx-1", "clx-plain-1"]})
        assert reply["NodeNames"] == ["spr-tdx-1"] and "clx-plain-1" in reply["FailedAndUnresolvableNodes"]
        assert {n: api.lists(n) for n in NAMES} == dict.fromkeys(NAMES, 1)
    finally:
        handle.stop(2.0)
        api.stop()
        cluster.stop(5.0)


@pytest.mark.slow
def test_wattwise_serve_lists_each_resource_once(tmp_path):
    """`wattwise serve --scaler --extender` against the API: one list per resource for both doors."""
    api = FakeKubeApi.recorded().start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: fake, cluster: {{server: "{api.url}"}}}}]
users: [{{name: test, user: {{}}}}]
contexts: [{{name: fake, context: {{cluster: fake, user: test}}}}]
current-context: fake
""")
    stderr = tmp_path / "stderr.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "wattwise", "serve", "--scaler", "--extender", "--kubeconfig", str(kubeconfig),
         "--host", "127.0.0.1", "--grpc-port", "0", "--health-port", "0", "--http-port", "0", "--plan-inline",
         "--grace-s", "2"],
        stdout=subprocess.PIPE, stderr=open(stderr, "wb"), text=True, cwd=REPO,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        ports: dict[str, int] = {}
        for line in proc.stdout:
            if m := re.match(r"scheduler extender on port (\d+)", line):
                ports["http"] = int(m.group(1))
            if m := re.match(r"ready: scaler gRPC on 127\.0\.0\.1:(\d+)", line):
                ports["grpc"] = int(m.group(1))
                break
        assert set(ports) == {"http", "grpc"}, stderr.read_text()
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        # ready once the node store has listed; every resource listed by then or soon after
        assert wait_until(lambda: status_of(f"http://127.0.0.1:{ports['http']}/readyz") == 200), stderr.read_text()
        assert wait_until(lambda: all(api.lists(n) >= 1 for n in NAMES))
        with grpc.insecure_channel(f"127.0.0.1:{ports['grpc']}") as channel:
            stub = pb_grpc.ExternalScalerStub(channel)
            checkout = ref("checkout-cams", "retail", workload="checkout-cams", streams="48")
            assert wait_until(lambda: active(stub, checkout))    # registered by the first call, then planned
        time.sleep(0.5)
        assert {n: api.lists(n) for n in NAMES} == dict.fromkeys(NAMES, 1)
        assert api.resources["pods"].seen[0].label_selector == ""     # every tenant's pods, for free room
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0, stderr.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        api.stop()
