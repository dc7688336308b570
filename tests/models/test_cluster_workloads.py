"""ScaledObjects pointing at WattWise, read into requests and base workloads without a KEDA call
(models.cluster_workloads)."""

from __future__ import annotations

from wattwise.models.admission import SelectorOperator
from wattwise.models.planner import plan
from wattwise.models.ports import CarbonReading
from wattwise.models.resources import Resources
from wattwise.models.snapshot import Objective, PlannerSettings, PolicyState, build_snapshot
from wattwise.models.tee import TeeKind
from wattwise.models.workload import Demand
from wattwise.models.workload_build import build_workload

from tests.models.kube_fixtures import SCALER_ADDRESS, read_nodes, read_workloads, scaled_object, scaled_objects

OURS = ["retail/checkout-cams", "retail/lobby-gpu", "retail/parking-lpr"]


def test_scaled_objects_pointing_at_us_become_requests_in_a_stable_order():
    got = read_workloads()
    assert [r.workload_key for r in got.requests] == OURS
    assert list(got.bases) == OURS
    assert read_workloads(list(reversed(scaled_objects()))) == got
    r = got.requests[0]
    assert (r.scaled_object, r.scaled_object_namespace) == ("checkout-cams", "retail")
    assert r.demand.query == 'sum(wattwise_active_streams{namespace="retail",workload="checkout-cams"})'
    assert (r.objective, r.headroom, r.fps_per_stream) == ("energy", 0.1, 15.0)
    # another scaler's external trigger and a prometheus trigger are not ours: neither read nor reported
    left = dict(got.left_out)
    assert "vision/batch-scorer" not in left and "ops/queue-workers" not in left


def test_the_pod_template_gives_tee_footprint_placement_and_bounds():
    base = read_workloads().bases["retail/checkout-cams"]
    assert base.confidentiality.describe() == "tdx"             # runtimeClassName kata-qemu-tdx
    assert base.runtime_class == "kata-qemu-tdx"
    assert base.footprint == Resources(5_000, 10_240, 0)           # 4 CPU / 8Gi + the RuntimeClass's 1 CPU / 2Gi
    assert (base.min_replicas, base.max_replicas) == (1, 80)        # spec.minReplicaCount / maxReplicaCount
    (term,) = base.placement.required_terms
    assert term.expressions[0].operator is SelectorOperator.IN
    assert term.expressions[0].values == ("eu-central-1", "uk-south-1")
    gpu = read_workloads().bases["retail/lobby-gpu"]                # a StatefulSet, GPU as a limit
    assert gpu.footprint == Resources(6_000, 24_576, 1)
    assert (gpu.min_replicas, gpu.max_replicas) == (0, 100)          # KEDA's defaults
    assert [t.key for t in gpu.placement.tolerations] == ["nvidia.com/gpu"]
    assert gpu.confidentiality.describe() == "none"


def test_metadata_overrides_the_template():
    got = read_workloads()
    request = next(r for r in got.requests if r.workload_key == "retail/parking-lpr")
    base = got.bases["retail/parking-lpr"]
    assert base.confidentiality.describe() == "sev-snp or tdx"        # the template's wattwise.io/tee annotation
    assert base.footprint == Resources(2_000, 4_096, 0) and (base.min_replicas, base.max_replicas) == (0, 80)
    assert base.placement.node_selector == (("kubernetes.io/arch", "amd64"),)
    w = build_workload(request, base, Demand(streams=3))
    assert w.confidentiality.any_of == frozenset({frozenset({TeeKind.TDX})})   # metadata tee: tdx
    assert w.footprint == Resources(6_000, 12_288, 0)                           # metadata cpu / memory
    assert (w.min_replicas, w.max_replicas) == (2, 40)                          # metadata bounds
    assert w.placement == base.placement and w.key == "retail/parking-lpr"
    # queryFromEnv resolved from the scale target's first container, as KEDA does
    assert request.demand.query == 'sum(wattwise_active_streams{namespace="retail",workload="parking-lpr"})'


def test_invalid_scaled_objects_are_left_out_with_their_reason_while_the_others_plan():
    got = read_workloads()
    left = dict(got.left_out)
    assert set(left) == {"retail/entrance-cams", "retail/kiosk-cams", "retail/door-cams"}
    assert left["retail/entrance-cams"].startswith("spec.triggers[0].metadata.minReplica: unknown key (accepted keys:")
    assert left["retail/kiosk-cams"] == "spec.scaleTargetRef: Deployment retail/kiosk-cams not found"
    assert left["retail/door-cams"].startswith(
        "spec.triggers[0].metadata.tee: none is weaker than what the pod template's runtimeClassName kata-qemu-snp "
        "needs (sev-snp)")
    assert all("\n" not in reason for reason in left.values())

    nodes = read_nodes(managed_workloads=set(got.bases))
    demand = {"retail/checkout-cams": 20, "retail/parking-lpr": 4, "retail/lobby-gpu": 6}
    workloads = [build_workload(r, got.bases[r.workload_key], Demand(streams=demand[r.workload_key]))
                 for r in got.requests]
    zones = {n.zone for n in nodes.nodes}
    snap = build_snapshot(0.0, dict(nodes.node_classes), list(nodes.nodes), workloads,
                          carbon={z: CarbonReading(z, 300.0, 0.0, "test") for z in zones},
                          objective=Objective("energy"), settings=PlannerSettings(time_budget_s=5.0),
                          state=PolicyState())
    result, _ = plan(snap)
    assert set(result.workloads) == set(OURS)
    node_of = {n.name: n for n in nodes.nodes}
    for key in OURS:
        assert result.workloads[key].replicas > 0, key
    # checkout-cams: TDX, and only in the regions its affinity names
    for name in result.workloads["retail/checkout-cams"].by_node:
        labels = dict(node_of[name].labels)
        assert labels["topology.kubernetes.io/region"] in ("eu-central-1", "uk-south-1")
        assert TeeKind.TDX in node_of[name].tee_ready
    # lobby-gpu needs a GPU and tolerates the GPU node's taint; parking-lpr (CPU, TDX) never lands there
    assert set(result.workloads["retail/lobby-gpu"].by_node) <= {"l40s-gpu-1", "h100-cc-1"}
    assert "l40s-gpu-1" in result.workloads["retail/lobby-gpu"].ranking          # ranking: allowed nodes
    assert "l40s-gpu-1" not in result.workloads["retail/parking-lpr"].ranking


def test_env_from_a_secret_is_refused_with_what_to_do():
    so = scaled_object("parking-lpr")
    so["spec"]["triggers"][0]["metadata"]["queryFromEnv"] = "QUEUE_PASSWORD"   # valueFrom a Secret
    ((where, reason),) = read_workloads([so]).left_out
    assert where == "retail/parking-lpr"
    assert reason == ("spec.triggers[0].metadata.queryFromEnv: 'QUEUE_PASSWORD' is not an env variable with a value "
                      "in the scale target's first container (values from ConfigMaps or Secrets are not read: give "
                      "the value itself)")


def test_one_bad_scaled_object_never_stops_the_others():
    two_ours = scaled_object("kiosk-cams")
    two_ours["metadata"]["name"] = "two-triggers"
    two_ours["spec"]["triggers"].append(dict(two_ours["spec"]["triggers"][0]))
    rollout = scaled_object("lobby-gpu")
    rollout["metadata"]["name"] = "rollout"
    rollout["spec"]["scaleTargetRef"] = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "x"}
    rollout["spec"]["triggers"][0]["metadata"]["workload"] = "rollout"
    twin = scaled_object("checkout-cams")
    twin["metadata"]["name"] = "checkout-twin"                 # names the same workload as checkout-cams
    garbage = {"metadata": {"name": "garbage", "namespace": "retail"},
               "spec": {"triggers": [{"type": "external", "metadata": {"scalerAddress": SCALER_ADDRESS}}],
                        "scaleTargetRef": "checkout-cams"}}
    no_name = {"metadata": {"name": "no-target", "namespace": "retail"},
               "spec": {"triggers": [{"type": "external-push", "metadata": {"scalerAddress": SCALER_ADDRESS}}],
                        "scaleTargetRef": {"kind": "Deployment"}}}
    got = read_workloads(scaled_objects() + [two_ours, rollout, twin, garbage, no_name])
    assert [r.workload_key for r in got.requests] == OURS
    left = dict(got.left_out)
    assert left["retail/two-triggers"] == "spec.triggers: 2 triggers point at this WattWise (indexes 0, 1) (keep one)"
    assert left["retail/rollout"].startswith("spec.scaleTargetRef: Rollout (argoproj.io/v1alpha1) is not supported")
    assert left["retail/checkout-twin"] == ("names workload retail/checkout-cams as ScaledObject retail/checkout-cams "
                                            "does (give each ScaledObject its own `workload`)")
    assert left["retail/garbage"] == "spec.scaleTargetRef: must be an object with a kind and a name"
    assert left["retail/no-target"] == "spec.scaleTargetRef.name: is required"


def test_a_tee_only_the_scaled_object_asks_for_is_refused():
    """lobby-gpu's StatefulSet asks for no TEE; `tee: tdx` in its trigger alone would leave its pods
    without a TEE demand of their own, which the extender enforces whatever the plan says."""
    so = scaled_object("lobby-gpu")
    so["spec"]["triggers"][0]["metadata"]["tee"] = "tdx"
    got = read_workloads([so])
    assert got.requests == () and dict(got.left_out)["retail/lobby-gpu"] == (
        "spec.triggers[0].metadata.tee: tdx is asked here but not by the pod template: without a plan its pods carry "
        "no TEE demand the scheduler extender can enforce (set the template's runtimeClassName (e.g. kata-qemu-tdx) "
        "or its wattwise.io/tee annotation)")


def test_a_trigger_with_metric_type_value_is_refused():
    so = scaled_object("checkout-cams")
    so["spec"]["triggers"][0]["metricType"] = "Value"
    got = read_workloads([so])
    assert got.requests == () and dict(got.left_out)["retail/checkout-cams"] == (
        "spec.triggers[0].metricType: 'Value' multiplies WattWise's answer by the pods ready (leave it out or set "
        "AverageValue, its default)")
    so["spec"]["triggers"][0]["metricType"] = "AverageValue"
    assert [r.workload_key for r in read_workloads([so]).requests] == ["retail/checkout-cams"]
