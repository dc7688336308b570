"""The nodes a process watches, read into the planner's nodes and classes (models.cluster_nodes)."""

from __future__ import annotations

import copy

from wattwise.models.admission import Taint, TaintEffect
from wattwise.models.grid_zone import UNMAPPED_ZONE, GridZoneSource
from wattwise.models.power_curve import PowerCurve
from wattwise.models.power_source import PowerCurveSource
from wattwise.models.resources import Resources

from tests.models.kube_fixtures import nodes, pods, read_nodes

GPU_TAINT = Taint("nvidia.com/gpu", TaintEffect.NO_SCHEDULE, "present")


def by_name(cluster):
    return {n.name: n for n in cluster.nodes}


def test_free_room_counts_other_tenants_pods_and_kata_overhead():
    got = by_name(read_nodes())
    # spr-tdx-1: payments' Kata TDX pod, 8 CPU / 16Gi plus its spec.overhead 1 CPU / 2Gi; a log
    # shipper, 1.5 CPU / 1.5Gi plus its sidecar's 0.5 CPU / 0.5Gi. Not counted: the finished Job
    # pod, and WattWise's own checkout-cams replica (the planner places those itself).
    assert got["spr-tdx-1"].reserved == Resources(11_000, 20_480, 0)
    assert got["spr-tdx-1"].free == Resources(111_500 - 11_000, 525_891_072 // 1024 - 20_480, 0)
    # the trainer asks for its GPU as a limit only; the pending pod is on no node
    assert got["l40s-gpu-1"].reserved == Resources(8_000, 32_768, 1)
    assert all(n.reserved == Resources() for name, n in got.items() if name not in ("spr-tdx-1", "l40s-gpu-1"))


def test_a_replica_of_a_workload_not_planned_counts_as_another_tenants():
    got = by_name(read_nodes(managed_workloads={"retail/parking-lpr"}))
    # the checkout-cams replica (template request 4 CPU / 8Gi, overhead 1 CPU / 2Gi) now counts
    assert got["spr-tdx-1"].reserved == Resources(16_000, 30_720, 0)
    assert by_name(read_nodes(managed_workloads={"retail/checkout-cams"}))["spr-tdx-1"].reserved == \
        Resources(11_000, 20_480, 0)


def test_a_templates_runtime_class_overhead_is_added_when_the_pod_has_none():
    pod = copy.deepcopy(next(p for p in pods() if p["metadata"]["name"].startswith("fraud-scorer")))
    del pod["spec"]["overhead"]    # as if created before the RuntimeClass had one: podFixed is used
    got = by_name(read_nodes(pod_objs=[pod]))
    assert got["spr-tdx-1"].reserved == Resources(9_000, 18_432, 0)


def test_grid_zones_from_label_user_map_cloud_region_else_unmapped():
    cluster = read_nodes(user_zone_map={"uk-south-1a": "GB"})
    zones = {name: (z.zone, z.source) for name, z in cluster.zone_sources.items()}
    assert zones["l40s-gpu-1"] == ("SE-SE3", GridZoneSource.LABEL)          # wattwise.io/grid-zone
    assert zones["spr-tdx-2"] == ("GB", GridZoneSource.USER_MAP)             # by topology zone
    assert zones["spr-tdx-1"] == ("DE", GridZoneSource.CLOUD_REGION)         # eu-central-1
    assert zones["milan-snp-1"] == ("US-CAL-CISO", GridZoneSource.CLOUD_REGION)
    assert {n.name: n.zone for n in cluster.nodes} == {name: z for name, (z, _) in zones.items()}
    bare = read_nodes(cloud_regions={})
    assert bare.zone_sources["spr-tdx-1"].source is GridZoneSource.UNMAPPED
    assert by_name(bare)["spr-tdx-1"].zone == UNMAPPED_ZONE


def test_power_curve_sources_are_reported_per_class():
    mine, fit = PowerCurve.linear(90, 300), PowerCurve.linear(120, 650)
    cluster = read_nodes(power_catalogue={"clx-plain": mine}, fitted_curves={"m7i-metal-48xl": fit})
    sources = {c: s.source for c, s in cluster.curve_sources.items()}
    assert sources["clx-plain"] is PowerCurveSource.CATALOGUE
    assert cluster.node_classes["clx-plain"].power == mine
    # Milan (family 25, model 1): the 128-core SPECpower result, unscaled
    assert sources["milan-snp"] is PowerCurveSource.SPECPOWER
    assert cluster.node_classes["milan-snp"].power.idle_w == 108.0
    assert "Milan" in cluster.curve_sources["milan-snp"].note
    assert sources["l40s-2x-icx"] is PowerCurveSource.SPECPOWER                # Ice Lake host
    assert sources["m7i-metal-48xl"] is PowerCurveSource.KEPLER_FIT            # Sapphire Rapids: none bundled
    assert cluster.node_classes["m7i-metal-48xl"].power == fit
    assert sources["spr-amx-tdx"] is PowerCurveSource.PRIOR
    assert set(sources) == set(cluster.node_classes)
    assert {n.node_class for n in cluster.nodes} <= set(cluster.node_classes)


def test_taints_come_from_the_node_spec():
    got = by_name(read_nodes())
    assert got["l40s-gpu-1"].taints == (GPU_TAINT,)
    assert got["spr-tdx-cordoned"].taints == (Taint("node.kubernetes.io/unschedulable", TaintEffect.NO_SCHEDULE),)
    assert not got["spr-tdx-cordoned"].schedulable
    assert got["spr-tdx-1"].taints == ()


def test_what_cannot_be_read_is_left_out_and_reported_the_rest_is_read():
    objs = nodes()
    bad_cpu = copy.deepcopy(objs[0])
    bad_cpu["metadata"]["name"] = "broken-1"
    bad_cpu["status"]["allocatable"]["cpu"] = "lots"
    bad_taint = copy.deepcopy(objs[1])
    bad_taint["metadata"]["name"] = "broken-2"
    bad_taint["spec"]["taints"] = [{"key": "dedicated", "effect": "Sometimes"}]
    bad_pod = copy.deepcopy(pods()[1])
    bad_pod["spec"]["containers"][0]["resources"]["requests"]["memory"] = "a lot"
    cluster = read_nodes(objs + [bad_cpu, bad_taint, {"metadata": {}}], pods() + [bad_pod])
    assert {n.name for n in cluster.nodes} == {o["metadata"]["name"] for o in objs}
    problems = "\n".join(cluster.problems)
    assert "node broken-1: left out, cannot be read: status.allocatable.cpu: not a CPU quantity: 'lots'" in problems
    assert "node broken-2: left out" in problems and "unknown taint effect 'Sometimes'" in problems
    assert "node ?: left out" in problems
    assert "pod monitoring/log-shipper-2xk8p: its requests are left out" in problems
    assert all("\n" not in p for p in cluster.problems)
    # the bad copy of the log shipper is left out; everything else on spr-tdx-1 still counts
    assert by_name(cluster)["spr-tdx-1"].reserved == Resources(11_000, 20_480, 0)


def test_a_bad_runtime_class_loses_its_overhead_only():
    from tests.models import kube_fixtures

    rcs = kube_fixtures.runtime_classes() + [{"metadata": {"name": "kata-broken"}, "handler": "kata",
                                              "overhead": {"podFixed": {"cpu": "one"}}}]
    cluster = kube_fixtures.cluster_nodes(nodes(), pods(), rcs, measured_curves=kube_fixtures.MEASURED)
    assert set(cluster.runtime_overheads) == {"kata-qemu-tdx", "kata-qemu-snp"}
    assert any(p.startswith("RuntimeClass kata-broken: overhead left out") for p in cluster.problems)


def test_nodes_sharing_a_class_label_but_not_hardware_get_classes_of_their_own():
    cluster = read_nodes()
    got = by_name(cluster)
    # both labelled wattwise.io/node-class spr-amx-tdx; only spr-tdx-1 also has SGX
    assert got["spr-tdx-1"].node_class == "spr-amx-tdx"
    assert got["spr-tdx-cordoned"].node_class == "spr-amx-tdx-2"
    assert cluster.node_classes["spr-amx-tdx"].tee_kinds != cluster.node_classes["spr-amx-tdx-2"].tee_kinds
    assert any("spr-tdx-cordoned" in p and "its class is spr-amx-tdx-2" in p for p in cluster.problems)


def test_pods_that_run_on_every_node_take_room_but_never_keep_a_node_on():
    """A DaemonSet pod (Kepler, a CNI, a log agent) or a static pod goes with its node: counting it
    as a tenant would keep every node of a real cluster on and leave the planner nothing to idle."""
    from wattwise.models.grouping import group_nodes

    daemon = {"metadata": {"name": "kepler-exporter-abcde", "namespace": "monitoring",
                           "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "kepler-exporter",
                                                "uid": "u1", "controller": True}]},
              "spec": {"nodeName": "icx-sgx-1", "containers": [{"name": "kepler", "resources": {
                  "requests": {"cpu": "500m", "memory": "512Mi"}}}]},
              "status": {"phase": "Running"}}
    static = copy.deepcopy(daemon)
    static["metadata"].update(name="kube-proxy-icx-sgx-1", ownerReferences=[
        {"apiVersion": "v1", "kind": "Node", "name": "icx-sgx-1", "uid": "u2", "controller": True}])
    cluster = read_nodes(pod_objs=[*pods(), daemon, static])
    before = by_name(read_nodes())["icx-sgx-1"]
    got = by_name(cluster)["icx-sgx-1"]
    assert got.reserved == before.reserved == Resources()
    assert got.per_node_reserved == Resources(1_000, 1_024, 0)
    assert got.free == before.free - Resources(1_000, 1_024, 0)
    (group,) = group_nodes([got], dict(cluster.node_classes), 1)
    assert not group.pinned      # the planner may idle it
