"""Load a scenario file (YAML) into a Snapshot the planner and the simulator can use."""

from __future__ import annotations

import csv
import difflib
import types
import typing
from dataclasses import dataclass, replace
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from wattwise.models import BUNDLED_SCENARIO, persistence
from wattwise.models.cluster import Node, NodeClass
from wattwise.models.errors import InvalidInputError
from wattwise.models.labels import DEFAULT_MAPPING
from wattwise.models.network import Network
from wattwise.models.ports import CarbonReading, CarbonSignal
from wattwise.models.power_curve import PowerCurve
from wattwise.models.resources import Resources, parse_cpu_m, parse_memory_mib
from wattwise.models.scenario_schema import NodeClassSpec, ScenarioSpec
from wattwise.models.snapshot import Objective, PlannerSettings, Snapshot, build_snapshot
from wattwise.models.tee import NONE, TeeKind, confidentiality_from_runtime_class, parse_tee_list
from wattwise.models.workload import Demand, Sla, Workload


@dataclass(frozen=True)
class Scenario:
    path: Path
    spec: ScenarioSpec
    snapshot: Snapshot

    def resolve(self, relative: str) -> Path:
        """A path written in the scenario, relative to the scenario file."""
        p = Path(relative)
        return p if p.is_absolute() else (self.path.parent / p).resolve()


def _format_validation_error(origin: str, err: ValidationError) -> str:
    """Every error, `; `-separated on one line; an unknown key names the closest known one."""
    parts = []
    for e in err.errors():
        loc = tuple(e["loc"])
        path = ".".join(str(p) for p in loc) or "<root>"
        if e["type"] == "extra_forbidden":
            parts.append(f"{path}: {_unknown_key(loc)}")
        else:
            parts.append(f"{path}: {e['msg'].removeprefix('Value error, ')}")
    return f"{origin}: {'; '.join(parts)}"


def _unknown_key(loc: tuple) -> str:
    known = _keys_at(ScenarioSpec, loc[:-1])
    if not known:
        return "unknown key"
    close = difflib.get_close_matches(str(loc[-1]), known, n=1)
    if close:
        return f"unknown key (did you mean {close[0]!r}?)"
    return f"unknown key (known here: {', '.join(sorted(known))})"


def _keys_at(model, loc: tuple) -> list[str]:
    """The keys the schema allows at `loc` (aliases as written in the file)."""
    kind = model
    for part in loc:
        kind = _unwrap(kind)
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            field = next((f for name, f in kind.model_fields.items() if part in (name, f.alias)), None)
            if field is None:
                return []
            kind = field.annotation
        elif typing.get_origin(kind) in (list, dict):
            kind = typing.get_args(kind)[-1]
        else:
            return []
    kind = _unwrap(kind)
    if not (isinstance(kind, type) and issubclass(kind, BaseModel)):
        return []
    return [f.alias or name for name, f in kind.model_fields.items()]


def _unwrap(kind):
    """`X | None` -> X."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        return args[0] if len(args) == 1 else kind
    return kind


def load_specpower_curves(path: Path) -> dict[str, PowerCurve]:
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise InvalidInputError("power_curves", f"cannot read {path}: {e.strerror}") from None
    return {r["spec_hash"]: PowerCurve.specpower(float(r["active_idle_w"]),
                                                 [float(r[f"load_{p}_w"]) for p in range(10, 101, 10)])
            for r in rows}


def _node_class(name: str, spec: NodeClassSpec, curves: dict[str, PowerCurve]) -> NodeClass:
    p = spec.power
    if p.specpower is not None:
        if p.specpower not in curves:
            raise InvalidInputError(f"node_classes.{name}.power.specpower",
                                    f"no SPECpower curve {p.specpower!r}", "list it in the file named by power_curves")
        base = curves[p.specpower]
        curve = PowerCurve(base.util, base.power_w, p.sleep_w)
    elif p.curve_w is not None:
        curve = PowerCurve.specpower(p.curve_w[0], p.curve_w[1:], p.sleep_w)
    else:
        assert p.idle_w is not None and p.max_w is not None   # the schema asks for one of the three forms
        curve = PowerCurve.linear(p.idle_w, p.max_w, p.sleep_w)
    tees = {TeeKind.parse(t, f"node_classes.{name}.tee[{i}]") for i, t in enumerate(spec.tee)}
    if spec.gpu and spec.gpu.confidential:
        tees.add(TeeKind.NVIDIA_CC)
    return NodeClass(name=name, cpu_vendor=spec.cpu_vendor, cpu_model=spec.cpu_model, cores=spec.cores,
                     memory_gib=spec.memory_gib, amx=spec.amx, gpu_product=spec.gpu.product if spec.gpu else "",
                     gpu_count=spec.gpu.count if spec.gpu else 0, tee_kinds=frozenset(tees), power=curve,
                     gpu_idle_w=spec.gpu.idle_w if spec.gpu else 0.0, gpu_max_w=spec.gpu.max_w if spec.gpu else 0.0,
                     startup_s=spec.startup_s, startup_tee_s=spec.startup_tee_s, wake_s=spec.wake_s,
                     wake_energy_j=spec.wake_energy_j)


def workload_from_spec(i: int, w) -> Workload:
    path = f"workloads.{i}"
    if w.runtime_class:
        conf = confidentiality_from_runtime_class(w.runtime_class)
        if conf is None:
            conf = NONE
    else:
        conf = NONE
    if w.tee is not None:
        if w.runtime_class and conf.required:
            raise InvalidInputError(f"{path}.tee", "give either runtime_class or tee, not both")
        conf = parse_tee_list(w.tee, f"{path}.tee")
    sla = Sla(fps_per_stream=w.fps_per_stream, latency_ms=w.latency_ms)
    return Workload(name=w.name, namespace=w.namespace, model_type=w.model, sla=sla,
                    demand=Demand(streams=w.streams, total_fps=w.total_fps), confidentiality=conf,
                    footprint=Resources(parse_cpu_m(w.cpu, f"{path}.cpu"), parse_memory_mib(w.memory, f"{path}.memory"), w.gpu),
                    min_replicas=w.min_replicas, max_replicas=w.max_replicas, runtime_class=w.runtime_class or "")


def with_reach(workload: Workload, origin_zone: str | None, network: Network | None, zones: frozenset[str],
               where: str) -> Workload:
    """The workload with its cameras' zone and the network's round trips from there."""
    if origin_zone is None:
        return workload
    if origin_zone not in zones:
        raise InvalidInputError(f"{where}.origin_zone", f"unknown zone {origin_zone!r}",
                                f"use one of: {', '.join(sorted(zones))}")
    if network is None:
        raise InvalidInputError(f"{where}.origin_zone", "needs the round trips between zones",
                                "add network: {rtt_ms: {ZONE: {ZONE: ms}}}, or drop origin_zone")
    return replace(workload, reach=network.reach(origin_zone))


def bundled_scenarios() -> list[str]:
    """The names of the scenarios WattWise ships (`eu-nearby`, `metro-retail`)."""
    return sorted(p.stem for p in BUNDLED_SCENARIO.parent.glob("*.yaml"))


def bundled_hint() -> str:
    """What to do about a scenario that cannot be found, as every command says it."""
    return f"give a scenario file, or a bundled one by name: {', '.join(bundled_scenarios())}"


def scenario_path(value: str | Path) -> Path:
    """A scenario file, or a bundled scenario by its bare name (`eu-nearby`), so an installed
    wattwise finds the scenarios it ships without their site-packages path. A file of that name
    in the working directory comes first."""
    path = Path(value)
    if path.exists() or path.suffix or len(path.parts) != 1:
        return path
    bundled = BUNDLED_SCENARIO.parent / f"{path.name}.yaml"
    return bundled if bundled.is_file() else path


def load_scenario(path: str | Path) -> Scenario:
    path = scenario_path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as e:
        raise InvalidInputError(str(path), f"cannot read the scenario file: {e.strerror}", bundled_hint()) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise InvalidInputError(str(path), f"not valid YAML{where}") from None
    try:
        spec = ScenarioSpec.model_validate(raw)
    except ValidationError as e:
        raise InvalidInputError("", _format_validation_error(str(path), e)) from None
    try:
        snapshot = snapshot_from_spec(spec, path)
    except InvalidInputError as e:
        raise InvalidInputError(f"{path}: {e.path}" if e.path else str(path), e.problem, e.hint) from None
    return Scenario(path=path, spec=spec, snapshot=snapshot)


def _node_labels(cls: NodeClass) -> tuple[tuple[str, str], ...]:
    """The labels a scenario's node carries: its class as `node.kubernetes.io/instance-type`, the
    label the cloud's node controller sets on every node and the one a live WattWise reads a node's
    class from (`labels.node_from_k8s`), so a pod's node affinity on it means the same here."""
    return ((DEFAULT_MAPPING.instance_type_label, cls.name),)


def snapshot_from_spec(spec: ScenarioSpec, path: Path, now_s: float = 0.0) -> Snapshot:
    base = path.parent
    curves = load_specpower_curves((base / spec.power_curves).resolve()) if spec.power_curves else {}
    classes = {name: _node_class(name, c, curves) for name, c in spec.node_classes.items()}
    nodes = []
    seen = set()
    for i, g in enumerate(spec.nodes):
        where = f"nodes.{i}"
        if g.node_class not in classes:
            raise InvalidInputError(f"{where}.class", f"unknown node class {g.node_class!r}",
                                    f"define it under node_classes (have: {', '.join(sorted(classes))})")
        if g.zone not in spec.zones:
            raise InvalidInputError(f"{where}.zone", f"unknown zone {g.zone!r}", "define it under zones")
        cls = classes[g.node_class]
        on = g.count if g.powered_on is None else min(g.powered_on, g.count)
        reserved = Resources(parse_cpu_m(g.reserved_cpu, f"{where}.reserved_cpu"),
                             parse_memory_mib(g.reserved_memory, f"{where}.reserved_memory"))
        for k in range(g.count):
            name = f"{g.name_prefix}-{k + 1}"
            if name in seen:
                raise InvalidInputError(f"{where}.name_prefix", f"node name {name} is used twice")
            seen.add(name)
            nodes.append(Node(name=name, node_class=cls.name, zone=g.zone,
                              tee_ready=cls.tee_kinds if g.tee_ready else frozenset(),
                              allocatable=Resources(cls.cores * 1000 - 500, int(cls.memory_gib * 1024) - 2048, cls.gpu_count),
                              reserved=reserved, powered_on=k < on, labels=_node_labels(cls)))
    network = Network.parse(spec.network.rtt_ms, "network.rtt_ms", frozenset(spec.zones)) if spec.network else None
    workloads = [with_reach(workload_from_spec(i, w), w.origin_zone, network, frozenset(spec.zones), f"workloads.{i}")
                 for i, w in enumerate(spec.workloads)]
    keys = [w.key for w in workloads]
    if len(set(keys)) != len(keys):
        raise InvalidInputError("workloads", "two workloads share a namespace/name")
    models = {}
    if spec.energy_models:
        loaded, _ = persistence.load((base / spec.energy_models).resolve())
        models = {(m.workload, m.node_class): m for m in loaded}
    carbon = {z: CarbonReading(zone=z, g_per_kwh=zs.carbon_g_per_kwh, at_s=now_s, source="scenario",
                              signal=CarbonSignal(zs.signal))
              for z, zs in spec.zones.items()}
    s = spec.settings
    return build_snapshot(now_s, classes, nodes, workloads, models=models, carbon=carbon,
                          objective=Objective(spec.objective, spec.carbon_weight),
                          settings=PlannerSettings(headroom=s.headroom, scale_down_window_s=s.scale_down_window_s,
                                                   amortise_s=s.amortise_s, time_budget_s=s.time_budget_s,
                                                   mip_node_limit=s.mip_node_limit))
