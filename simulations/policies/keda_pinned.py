"""`keda-tuned-pinned-ca`: keda-tuned-ca with each workload pinned to the node class its operator
would choose without WattWise, and its trigger target sized for that class.

keda-tuned-ca sizes a workload's target for the slowest class its pods may land on, and its pods
mostly land on faster ones, where each replica carries far less than it could. The stronger
peer: pin each workload with a required node affinity on the label every cloud node carries,
`node.kubernetes.io/instance-type` (a scenario node's class, `models/scenario.py`), and size the
target for the class pinned: 0.9 x one replica's capacity there (`keda_tuned.TARGET_SHARE`).

Which class, from what an operator has and WattWise is given as well: each class's published
power curve, one replica's capacity per class (as the other tuned peers take it), the
workload's filters (TEE, taints, latency: the classes it may run on at all) and its peak demand
(the scenario's peak streams x FPS per stream: the cameras it has).
- Rank the classes it may run on by energy per frame at full load: a node of the class full of
  the workload's replicas, each at capacity; the class's curve at the CPU (and GPU) they keep
  busy, over the frames they serve. Ties go to the faster class.
- Pin it to the first. If that class's nodes cannot hold the replicas the HPA asks at peak
  (peak / target, at most maxReplicaCount; packed first fit into the room the workloads before
  it in the scenario left there), allow the next class too, and so on; the target is then sized
  for the slowest class allowed, as keda-tuned sizes it.
The affinity goes on the workload's pod template and the cluster model is built again from it
(`Policy.cluster_model`): kube-scheduler's filters, cluster-autoscaler's scheduling simulation
and the summary read it as they read any required node affinity (`models/admission.py`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from wattwise.models.admission import Requirement, SelectorOperator, Term
from wattwise.models.labels import DEFAULT_MAPPING
from wattwise.models.workload import Workload
from wattwise.simulations.cluster_model import ClusterModel, build_cluster_model
from wattwise.simulations.policies.keda_tuned import PACKING, TARGET_SHARE, KedaTunedCaPolicy, scheduler_text

UNBOUNDED = 10**9      # replicas of a pod that requests nothing: no limit from room
CLASS_LABEL = DEFAULT_MAPPING.instance_type_label
RULE = (f"each workload pinned (required nodeAffinity {CLASS_LABEL} In ...) to the class it may run on with "
        "the least energy per frame at full load (its power curve over the frames a node full of replicas "
        "serves), the next ones added while those cannot hold its peak; target sized for the slowest pinned")


def energy_per_frame_j(cm: ClusterModel, w: int, node: int) -> float:
    """J per frame on a node like `node` full of workload `w`'s replicas, each at capacity: the
    class's power curve at the CPU and GPU they keep busy, over the frames they serve."""
    per_node = _replicas_fitting(cm, w, cm.total_cpu_m[node], cm.total_mem_mib[node], float(cm.alloc_gpu[node]))
    if per_node <= 0 or cm.cap_fps[w, node] <= 0:
        return float("inf")
    c = cm.class_idx[node]
    cpu_w = float(np.interp(min(1.0, per_node * cm.cpu_share[w, node]), cm.curve_util[c], cm.curve_w[c]))
    gpu_w = cm.gpu_count[node] * (cm.gpu_idle_w[node] + cm.gpu_span_w[node] * min(1.0, per_node * cm.gpu_share[w, node]))
    return (cpu_w + gpu_w) / (per_node * cm.cap_fps[w, node])


def pinned_classes(cm: ClusterModel, peak_fps: np.ndarray) -> list[tuple[str, ...]]:
    """Per workload (in `cm`'s order), the classes it is pinned to, best first (the rule above);
    () for a workload no node may run."""
    room = np.stack([cm.alloc_cpu_m, cm.alloc_mem_mib, cm.alloc_gpu]).astype(float)   # left per node
    out = []
    for w in range(cm.n_workloads):
        nodes = np.flatnonzero(cm.eligible[w])
        ranked = _ranked_classes(cm, w, nodes)
        allowed: list[int] = []
        for c in ranked:
            allowed.append(c)
            members = nodes[np.isin(cm.class_idx[nodes], allowed)]
            target = TARGET_SHARE * cm.cap_fps[w, members].min()
            need = min(int(np.ceil(np.round(peak_fps[w] / target, 6))), int(cm.max_replicas[w]))
            left, unplaced = _pack(cm, w, members, room.copy(), need)
            if unplaced == 0 or len(allowed) == len(ranked):
                room = left
                break
        out.append(tuple(cm.class_names[c] for c in allowed))
    return out


def pinned_workload(workload: Workload, classes: tuple[str, ...]) -> Workload:
    """The workload with `CLASS_LABEL In classes` added to its pod template's required node
    affinity (to every term of one it has: the terms are ORed)."""
    pin = Requirement(CLASS_LABEL, SelectorOperator.IN, classes)
    terms = workload.placement.required_terms
    pinned = (Term((pin,)),) if terms is None else tuple(replace(t, expressions=t.expressions + (pin,)) for t in terms)
    return replace(workload, placement=replace(workload.placement, required_terms=pinned))


def peak_demand_fps(scenario, cm: ClusterModel) -> np.ndarray:
    """Per workload, its peak demand as the scenario gives it: peak streams x FPS per stream
    (`demand_profile`), else its constant demand."""
    specs = {f"{s.namespace}/{s.name}": s for s in scenario.spec.workloads}
    out = np.zeros(cm.n_workloads)
    for w, wl in enumerate(cm.snapshot.workloads):
        prof = specs[wl.key].demand_profile
        out[w] = prof.peak_streams * wl.sla.fps_per_stream if prof is not None else wl.demand_fps
    return out


class KedaTunedPinnedCaPolicy(KedaTunedCaPolicy):
    name = "keda-tuned-pinned-ca"
    plugins = PACKING

    def cluster_model(self, cm: ClusterModel) -> ClusterModel:
        self.pinned = pinned_classes(cm, peak_demand_fps(self.scenario, cm))
        snap = cm.snapshot
        workloads = tuple(pinned_workload(wl, cls) if cls else wl for wl, cls in zip(snap.workloads, self.pinned))
        return build_cluster_model(replace(snap, workloads=workloads))   # the GPU taint is on `snap` already

    def tuning(self, cm: ClusterModel) -> dict:
        pins = {wl.name: list(cls) for wl, cls in zip(cm.snapshot.workloads, self.pinned)}
        shown = ", ".join(f"{w} {'+'.join(c)}" for w, c in pins.items())
        return {**super().tuning(cm), "node_affinity": pins, "pinning_rule": RULE,
                "target_rule": f"{TARGET_SHARE} x one replica's capacity on the slowest class it is pinned to",
                "scheduler": (f"{scheduler_text(self.plugins)}; per-workload class pinning and target (required "
                              f"nodeAffinity {CLASS_LABEL}: {shown})")}


def _ranked_classes(cm: ClusterModel, w: int, nodes: np.ndarray) -> list[int]:
    """The classes of `nodes` (those `w` may run on), least energy per frame at full load first,
    ties to the faster; each judged by its first node."""
    first = {int(cm.class_idx[n]): int(n) for n in nodes[::-1]}
    return sorted(first, key=lambda c: (energy_per_frame_j(cm, w, first[c]), -cm.cap_fps[w, first[c]],
                                        cm.class_names[c]))


def _replicas_fitting(cm: ClusterModel, w: int, cpu_m: float, mem_mib: float, gpu: float) -> int:
    fits = [have // need for have, need in ((cpu_m, cm.w_cpu_m[w]), (mem_mib, cm.w_mem_mib[w]), (gpu, cm.w_gpu[w]))
            if need > 0]
    return int(max(min(fits), 0)) if fits else UNBOUNDED


def _pack(cm: ClusterModel, w: int, nodes: np.ndarray, room: np.ndarray, need: int) -> tuple[np.ndarray, int]:
    """`need` replicas of `w` first fit onto `nodes`: (the room left, the replicas that did not fit)."""
    for n in nodes:
        if need <= 0:
            break
        k = min(need, _replicas_fitting(cm, w, *room[:, n]))
        room[:, n] -= k * np.array([cm.w_cpu_m[w], cm.w_mem_mib[w], cm.w_gpu[w]])
        need -= k
    return room, need
