"""Small constructors for core tests."""

from __future__ import annotations

from wattwise.models.cluster import Node, NodeClass
from wattwise.models.ports import CarbonReading
from wattwise.models.power_curve import PowerCurve
from wattwise.models.resources import Resources
from wattwise.models.snapshot import Objective, PlannerSettings, PolicyState, build_snapshot
from wattwise.models.tee import Confidentiality, TeeKind
from wattwise.models.workload import Demand, Sla, Workload

TDX, SNP, SGX, GPU_CC = TeeKind.TDX, TeeKind.SEV_SNP, TeeKind.SGX, TeeKind.NVIDIA_CC


def node_class(name="cpu", cores=32, amx=False, tees=(), idle_w=100.0, max_w=300.0, sleep_w=10.0, gpus=0, **kw):
    return NodeClass(name=name, cores=cores, memory_gib=cores * 4, amx=amx, tee_kinds=frozenset(tees),
                     power=PowerCurve.linear(idle_w, max_w, sleep_w), gpu_count=gpus,
                     gpu_idle_w=60.0 if gpus else 0.0, gpu_max_w=500.0 if gpus else 0.0, **kw)


def node(name, cls: NodeClass, zone="z1", on=True, ready=True, reserved_cpu_m=0):
    return Node(name=name, node_class=cls.name, zone=zone, tee_ready=cls.tee_kinds if ready else frozenset(),
                allocatable=Resources(cls.cores * 1000, int(cls.memory_gib * 1024), cls.gpu_count),
                reserved=Resources(reserved_cpu_m, 0, 0), powered_on=on)


def workload(name="w", fps=100.0, tees=None, cpu=4, gpu=0, model="detector-bf16", min_r=0, max_r=1000,
             trustworthy=True, latency_ms=400.0):
    conf = Confidentiality.of_kinds(tees) if tees else Confidentiality()
    return Workload(name=name, model_type=model, sla=Sla(15.0, latency_ms),
                    demand=Demand(total_fps=fps, trustworthy=trustworthy), confidentiality=conf,
                    footprint=Resources(cpu * 1000, cpu * 1024, gpu), min_replicas=min_r, max_replicas=max_r)


def snapshot(classes, nodes, workloads, carbon=None, objective="energy", now_s=0.0, state=None, **settings):
    settings.setdefault("time_budget_s", 5.0)
    settings.setdefault("mip_rel_gap", 1e-6)
    carbon = carbon or {}
    zones = {n.zone for n in nodes}
    readings = {z: CarbonReading(z, carbon.get(z, 300.0), now_s, "test") for z in zones}
    return build_snapshot(now_s, {c.name: c for c in classes}, nodes, workloads, carbon=readings,
                          objective=Objective(objective), settings=PlannerSettings(**settings),
                          state=state or PolicyState())


def cycle_replicas(cycle, steps, cls: NodeClass, nodes, name: str = "a") -> list[tuple[float, int | None]]:
    """Drive a `PlanCycle` as a refresher does, one workload `name` on `nodes` of class `cls`:
    `steps` of (t_s, fps, None when the demand read is untrustworthy); after each step, the
    replicas the last plan asked for."""
    from dataclasses import replace

    from wattwise.models.plan_cycle import CycleInputs
    from wattwise.models.planner import plan

    replicas, out = None, []
    for t_s, fps in steps:
        w = workload(name, fps=fps or 0.0)
        if fps is None:
            w = replace(w, demand=Demand(trustworthy=False, note="Prometheus down"))
        decision = cycle.step(CycleInputs(now_s=t_s, node_classes={cls.name: cls}, nodes=nodes,
                                          carbon={"z1": CarbonReading("z1", 300.0, t_s, "test")}, workloads=[w]))
        if decision.go:
            results = [plan(s) for s in decision.snapshots]
            cycle.commit(decision, results)
            replicas = results[0][0].workloads[w.key].replicas
        out.append((t_s, replicas))
    return out
