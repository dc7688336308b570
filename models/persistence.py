"""Energy models as versioned JSON. Never pickle: a pickled model is code execution waiting to happen."""

from __future__ import annotations

import json
import math
from pathlib import Path

from wattwise.models.energy import WorkloadClassModel
from wattwise.models.errors import ModelFileError
from wattwise.models.power_curve import PowerCurve
from wattwise.models.replica_model import ReplicaPowerModel

FORMAT = "wattwise.energy-models"
VERSION = 1


def model_to_dict(m: WorkloadClassModel) -> dict:
    coef = [float(c) for c in m.power.coef_]
    return {"workload": m.workload, "node_class": m.node_class, "intercept_w": m.intercept_w,
            "w_per_fps": coef[0], "w_per_fps2": coef[1] if len(coef) > 1 else 0.0,
            "power_std_w": m.power_std_w, "capacity_fps": m.capacity_fps,
            "capacity_std_fps": m.capacity_std_fps, "prior": m.prior, "n_samples": m.n_samples,
            "source": m.source}


def dumps(models: list[WorkloadClassModel], node_power: dict[str, PowerCurve] | None = None) -> str:
    doc = {"format": FORMAT, "version": VERSION,
           "models": [model_to_dict(m) for m in sorted(models, key=lambda m: (m.workload, m.node_class))],
           "node_power": {name: {"util": list(c.util), "power_w": list(c.power_w), "sleep_w": c.sleep_w}
                          for name, c in sorted((node_power or {}).items())}}
    return json.dumps(doc, indent=2)


def save(path: str | Path, models: list[WorkloadClassModel], node_power: dict[str, PowerCurve] | None = None) -> None:
    Path(path).write_text(dumps(models, node_power) + "\n")


def _number(entry: dict, key: str, where: str, minimum: float | None = None) -> float:
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ModelFileError(f"{where}.{key}: expected a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise ModelFileError(f"{where}.{key}: must be at least {minimum}, got {value}")
    return float(value)


def loads(text: str, origin: str = "<string>") -> tuple[list[WorkloadClassModel], dict[str, PowerCurve]]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise ModelFileError(f"{origin}: not JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ModelFileError(f"{origin}: not a WattWise energy-model file (expected \"format\": \"{FORMAT}\")")
    if doc.get("version") != VERSION:
        raise ModelFileError(f"{origin}: version {doc.get('version')!r} is not supported; this WattWise reads "
                             f"version {VERSION}: refit with `wattwise fit` or upgrade WattWise")
    entries = doc.get("models")
    if not isinstance(entries, list):
        raise ModelFileError(f"{origin}: \"models\" must be a list")
    models = []
    for i, entry in enumerate(entries):
        where = f"{origin}: models[{i}]"
        if not isinstance(entry, dict):
            raise ModelFileError(f"{where}: expected an object")
        for key in ("workload", "node_class"):
            if not isinstance(entry.get(key), str) or not entry[key]:
                raise ModelFileError(f"{where}.{key}: expected a non-empty string")
        power = ReplicaPowerModel.from_coefficients(_number(entry, "intercept_w", where),
                                                    _number(entry, "w_per_fps", where),
                                                    _number(entry, "w_per_fps2", where),
                                                    _number(entry, "power_std_w", where, 0.0))
        models.append(WorkloadClassModel(
            workload=entry["workload"], node_class=entry["node_class"], power=power,
            capacity_fps=_number(entry, "capacity_fps", where, 0.0),
            capacity_std_fps=_number(entry, "capacity_std_fps", where, 0.0),
            prior=bool(entry.get("prior", False)), n_samples=int(_number(entry, "n_samples", where, 0)),
            source=str(entry.get("source", "file"))))
    curves = {}
    node_power = doc.get("node_power") or {}
    if not isinstance(node_power, dict):
        raise ModelFileError(f"{origin}: \"node_power\" must be an object of node class -> curve")
    for name, c in node_power.items():
        try:
            curves[name] = PowerCurve(tuple(map(float, c["util"])), tuple(map(float, c["power_w"])),
                                      float(c.get("sleep_w", 0.0)))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ModelFileError(f"{origin}: node_power[{name!r}]: {e}") from None
    return models, curves


def load(path: str | Path) -> tuple[list[WorkloadClassModel], dict[str, PowerCurve]]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ModelFileError(f"{p}: cannot read ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise ModelFileError(f"{p}: not UTF-8 text (byte {e.start}): not a WattWise energy-model file") from None
    return loads(text, str(p))
