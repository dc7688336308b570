"""The kube-scheduler the simulator models: the extender's weight and the score plugins it
models, as a KubeSchedulerConfiguration sets them.

`SECOND_SCHEDULER` and `DEFAULT_PROFILE` are what deploy/examples/**/kube-scheduler-config.*.yaml
ship (tests/simulations/test_scheduler_config.py reads those files with `load_scheduler_config`
and checks they are equal), so the simulator runs what ships even from a wheel, where deploy/ is
not installed. `STOCK_PLUGINS` is kube-scheduler's default profile: where the baselines' pods go.

Modelled plugins: NodeResourcesFit (LeastAllocated or MostAllocated, CPU and memory weights),
NodeResourcesBalancedAllocation and PodTopologySpread with its system defaults (the simulated pods
set no constraints of their own). The others do not tell the simulated nodes apart
(TaintToleration, NodeAffinity, InterPodAffinity, ImageLocality: taints and affinities are hard
filters here, no images).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from wattwise.models.errors import InvalidInputError

FIT = "NodeResourcesFit"
BALANCED = "NodeResourcesBalancedAllocation"
SPREAD = "PodTopologySpread"
STRATEGIES = ("LeastAllocated", "MostAllocated")


@dataclass(frozen=True)
class ScorePlugins:
    """Weights of the modelled score plugins (0 = disabled) and NodeResourcesFit's strategy."""

    fit_weight: int = 1
    fit_strategy: str = "LeastAllocated"
    fit_cpu_weight: int = 1
    fit_memory_weight: int = 1
    balanced_weight: int = 1
    spread_weight: int = 2     # kube-scheduler's default profile weighs PodTopologySpread 2


@dataclass(frozen=True)
class SchedulerConfig:
    """The scheduler the WattWise extender is configured in; `source` names the file."""

    source: str
    extender_weight: int
    plugins: ScorePlugins


STOCK_PLUGINS = ScorePlugins()
SECOND_SCHEDULER = SchedulerConfig("deploy/examples/second-scheduler/kube-scheduler-config.second-scheduler.yaml", 10,
                                   ScorePlugins(fit_strategy="MostAllocated", balanced_weight=0, spread_weight=1))
DEFAULT_PROFILE = SchedulerConfig("deploy/examples/kube-scheduler-config.default-profile.yaml", 20, STOCK_PLUGINS)


def load_scheduler_config(path: str | Path, source: str | None = None) -> SchedulerConfig:
    """The modelled part of a KubeSchedulerConfiguration file (one profile, one prioritizing
    extender). Raises InvalidInputError naming the field for what it cannot model."""
    path = Path(path)
    try:
        docs = list(yaml.safe_load_all(path.read_text()))
    except OSError as e:
        raise InvalidInputError(str(path), f"cannot read it: {e.strerror}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise InvalidInputError(str(path), f"not valid YAML{f' at line {mark.line + 1}' if mark else ''}") from None
    found = [d for d in docs if isinstance(d, dict) and d.get("kind") == "KubeSchedulerConfiguration"]
    if len(found) != 1:
        raise InvalidInputError(str(path), f"{len(found)} KubeSchedulerConfiguration documents", "give a file with one")
    doc = found[0]
    return SchedulerConfig(source or str(path), _extender_weight(doc, path), _plugins(doc, path))


def _extender_weight(doc: dict, path: Path) -> int:
    scoring = [(i, e) for i, e in enumerate(doc.get("extenders") or []) if e.get("prioritizeVerb")]
    if len(scoring) != 1:
        raise InvalidInputError(f"{path}: extenders", f"{len(scoring)} extenders with a prioritizeVerb",
                                "the simulator models exactly one, the WattWise extender")
    i, ext = scoring[0]
    weight = ext.get("weight")
    if not isinstance(weight, int) or isinstance(weight, bool) or weight < 1:
        raise InvalidInputError(f"{path}: extenders.{i}.weight", f"must be a positive integer, got {weight!r}")
    return weight


def _plugins(doc: dict, path: Path) -> ScorePlugins:
    profiles = doc.get("profiles") or [{}]
    if len(profiles) != 1:
        raise InvalidInputError(f"{path}: profiles", f"{len(profiles)} profiles", "give a file with one profile")
    profile = profiles[0] or {}
    weights = {FIT: 1, BALANCED: 1, SPREAD: 2}   # kube-scheduler's defaults for the modelled plugins
    for point in ("multiPoint", "score"):      # score overrides multiPoint
        chosen = (profile.get("plugins") or {}).get(point) or {}
        for item in chosen.get("disabled") or []:
            if item.get("name") == "*":
                weights = dict.fromkeys(weights, 0)
            elif item.get("name") in weights:
                weights[item["name"]] = 0
        for item in chosen.get("enabled") or []:
            if item.get("name") in weights:
                weights[item["name"]] = int(item.get("weight") or 1)
    strategy, cpu_w, mem_w = "LeastAllocated", 1, 1
    for i, entry in enumerate(profile.get("pluginConfig") or []):
        if entry.get("name") != FIT:
            continue
        where = f"{path}: profiles.0.pluginConfig.{i}.args.scoringStrategy"
        scoring = (entry.get("args") or {}).get("scoringStrategy") or {}
        strategy = scoring.get("type", strategy)
        if strategy not in STRATEGIES:
            raise InvalidInputError(f"{where}.type", f"{strategy!r} is not modelled", f"use one of {', '.join(STRATEGIES)}")
        resources = {r.get("name"): int(r.get("weight") or 1) for r in scoring.get("resources") or []}
        if resources:
            others = sorted(set(resources) - {"cpu", "memory"})
            if others:
                raise InvalidInputError(f"{where}.resources", f"{', '.join(others)} not modelled",
                                        "the simulator weighs cpu and memory only")
            cpu_w, mem_w = resources.get("cpu", 0), resources.get("memory", 0)
    return ScorePlugins(weights[FIT], strategy, cpu_w, mem_w, weights[BALANCED], weights[SPREAD])
