"""Golden test: one recorded snapshot through the three doors gives one plan.

The snapshot is the bundled scenario at its own demand and carbon. It goes through:

- the gRPC door: the scaler as `wattwise serve --demo` builds it (`build_demo`), called over a
  real channel the way KEDA calls it (GetMetricSpec, then GetMetrics) with each workload's demo
  trigger metadata; replicas = the HPA's ceil(value / target);
- the HTTP door: the extender beside it on the scaler's plan, with the demo's node cache (as
  `start_extender_from_args` does for --demo), asked POST /prioritize for a new managed pod of
  each workload over every node; best = the node(s) with the highest score;
- the simulator: the `wattwise` policy started on a context whose one step replays the same
  demand and carbon on the same cluster (the scenario's power state); its KEDA metric gives the
  replicas and its extender scores over the same candidates the best node(s).

The snapshot has no WattWise pods running yet. The simulator knows that; the demo's doors are
told it through their pod-count ports (`--demo` has none, and without one the extender counts
no class as short of replicas, where zero pods make every planned class short).

The gRPC door and the simulator must ask for the same replicas per workload, and the extender
and the simulator must prefer the same node(s) for a new pod of each workload.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from wattwise.models.scenario import Scenario, load_scenario
from wattwise.models.snapshot import Snapshot
from wattwise.scaler.app import ThreadedScaler, build_demo
from wattwise.scaler.pod_counts import StaticPodCounts
from wattwise.scaler.proto import externalscaler_pb2 as pb
from wattwise.scaler.sources import demo_metadata
from wattwise.scheduler.node_cache import PlanSnapshotNodeCache
from wattwise.scheduler.replica_counts import StaticReplicaCounts
from wattwise.scheduler.server import start_extender
from wattwise.simulations.cluster_model import build_cluster_model
from wattwise.simulations.cluster_state import ClusterState
from wattwise.simulations.context import SimContext
from wattwise.simulations.inputs import SimInputs
from wattwise.simulations.policies import make_policy
from wattwise.simulations.timing import ControlTiming

from tests.scaler.helpers import LOOPBACK, NEVER, SCENARIO, stub_for
from tests.scheduler.helpers import args_names, post


def best(scores: dict[str, float]) -> frozenset[str]:
    """The best-scored node, or the nodes tied for the best score."""
    top = max(scores.values())
    return frozenset(n for n, s in scores.items() if s == top)


# -- the gRPC and HTTP doors: `wattwise serve --demo` ------------------------------------------------

def managed_pod(workload) -> dict:
    """A new pod of the workload as its ReplicaSet creates it: labelled for WattWise, with the
    Confidential Containers runtime class its TEE requirement names (if it names one)."""
    spec: dict = {"containers": [{"name": "inference", "image": "registry.example/inference:1"}]}
    if workload.runtime_class:
        spec["runtimeClassName"] = workload.runtime_class
    return {"metadata": {"name": f"{workload.name}-7d9f8-x2k4q", "namespace": workload.namespace,
                         "labels": {"wattwise.io/workload": workload.name}},
            "spec": spec}


def serve_demo(snapshot: Snapshot) -> tuple[dict[str, int], dict[str, frozenset[str]]]:
    """Replicas per workload from the scaler over gRPC, best nodes per workload from the extender
    over HTTP, both served as `wattwise serve --demo` serves them on `snapshot`, with no pods
    running (known: none)."""
    scaler = ThreadedScaler(build_demo(snapshot, interval_s=NEVER, config=LOOPBACK, pods=StaticPodCounts()))
    extender = None
    channel = None
    try:
        source = scaler.scaler.refresher
        extender = start_extender(source, "127.0.0.1", 0, PlanSnapshotNodeCache(source),
                                  replica_counts=StaticReplicaCounts({}))
        channel, stub = stub_for(scaler.grpc_port)
        names = [n.name for n in snapshot.nodes]
        replicas, best_nodes = {}, {}
        for w in snapshot.workloads:
            so = pb.ScaledObjectRef(name=w.name, namespace=w.namespace, scalerMetadata=demo_metadata(w))
            spec = stub.GetMetricSpec(so, timeout=10).metricSpecs[0]
            value = stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=so, metricName=spec.metricName),
                                    timeout=10).metricValues[0]
            replicas[w.key] = math.ceil(value.metricValueFloat / spec.targetSizeFloat)

            status, reply = post(extender.url + "/prioritize", args_names(managed_pod(w), names))
            assert status == 200, reply
            scores = {s["Host"]: s["Score"] for s in reply}
            assert set(scores) == set(names), f"{w.key}: prioritize did not score every candidate"
            best_nodes[w.key] = best(scores)
        return replicas, best_nodes
    finally:
        if channel is not None:
            channel.close()
        if extender is not None:
            extender.stop(2.0)
        scaler.stop(1.0)


# -- the simulator -----------------------------------------------------------------------------

def one_step_inputs(snapshot: Snapshot, demand_fps: np.ndarray, carbon_g_per_kwh: dict[str, float]) -> SimInputs:
    """One simulated step replaying the given demand per workload and carbon per zone."""
    zones = tuple(sorted(carbon_g_per_kwh))
    fps_per_stream = np.array([w.sla.fps_per_stream for w in snapshot.workloads])
    return SimInputs(step_s=60.0, n_steps=1, workload_keys=tuple(w.key for w in snapshot.workloads), zones=zones,
                     streams=(demand_fps / fps_per_stream)[None, :], demand_fps=demand_fps[None, :],
                     carbon_g_per_kwh=np.array([[carbon_g_per_kwh[z] for z in zones]]),
                     carbon_start="recorded snapshot", demand_start="recorded snapshot")


def simulate_start(scenario: Scenario, demand_fps: np.ndarray,
                   carbon_g_per_kwh: dict[str, float]) -> tuple[dict[str, int], dict[str, frozenset[str]]]:
    """The `wattwise` policy started as the engine starts it (`simulations/engine.py` run_policy),
    on the scenario's cluster in its own power state: its KEDA metric as the HPA reads it, and its
    extender scores for a new pod of each workload over every node."""
    snapshot = scenario.snapshot
    cm = build_cluster_model(snapshot)
    timing = ControlTiming()
    ctx = SimContext(cm=cm, st=ClusterState(cm, np.array([n.powered_on for n in snapshot.nodes])),
                     inputs=one_step_inputs(snapshot, demand_fps, carbon_g_per_kwh), timing=timing,
                     rng=np.random.default_rng(0), drop_history=np.zeros((1, cm.n_workloads)),
                     cpu_util=np.zeros(cm.n_nodes), gpu_util=np.zeros(cm.n_nodes))
    policy = make_policy("wattwise", scenario, timing)
    policy.start(ctx)
    total, target, _ = policy.metric(ctx)
    candidates = np.arange(cm.n_nodes)
    replicas, best_nodes = {}, {}
    for w, wl in enumerate(snapshot.workloads):
        replicas[wl.key] = math.ceil(total[w] / target[w])
        scores = policy.extender_scores(ctx, w, candidates)
        best_nodes[wl.key] = best({cm.node_names[n]: float(s) for n, s in zip(candidates, scores)})
    return replicas, best_nodes


# -- the test ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return load_scenario(SCENARIO)


def test_the_three_doors_make_the_same_plan(scenario):
    snapshot = scenario.snapshot
    demand_fps = np.array([w.demand_fps for w in snapshot.workloads])
    carbon = {zone: reading.g_per_kwh for zone, reading in snapshot.carbon.items()}
    assert demand_fps.all() and len(carbon) == len({n.zone for n in snapshot.nodes})

    grpc_replicas, extender_best = serve_demo(snapshot)
    sim_replicas, sim_best = simulate_start(scenario, demand_fps, carbon)

    keys = {w.key for w in snapshot.workloads}
    assert set(grpc_replicas) == set(sim_replicas) == set(extender_best) == set(sim_best) == keys
    assert all(n > 0 for n in grpc_replicas.values())
    assert grpc_replicas == sim_replicas, "replicas per workload: gRPC door vs simulator"
    assert extender_best == sim_best, "best node(s) for a new pod per workload: extender vs simulator"
