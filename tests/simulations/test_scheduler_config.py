"""The simulator runs the kube-scheduler that ships: its definitions equal deploy/examples'
KubeSchedulerConfigurations, and the score plugins are scored as those configure them."""

import json
from types import SimpleNamespace

import numpy as np
import pytest

from wattwise.cli import main
from wattwise.models.errors import InvalidInputError
from wattwise.simulations.policies.base import default_plugin_scores, plugin_scores, spread_scores
from wattwise.simulations.scheduler_config import (DEFAULT_PROFILE, SECOND_SCHEDULER, STOCK_PLUGINS, SchedulerConfig,
                                                   ScorePlugins, load_scheduler_config)
from wattwise.simulations.timing import ControlTiming

from .conftest import REPO, SCENARIO

DEPLOY = REPO / "deploy" / "examples"


@pytest.mark.parametrize("shipped", [SECOND_SCHEDULER, DEFAULT_PROFILE], ids=lambda c: c.source)
def test_definitions_equal_the_deploy_files(shipped):
    assert load_scheduler_config(REPO / shipped.source, source=shipped.source) == shipped


def test_every_shipped_configuration_is_modelled():
    shipped = sorted(p.relative_to(REPO).as_posix() for p in DEPLOY.rglob("kube-scheduler-config.*.yaml"))
    assert shipped == sorted([SECOND_SCHEDULER.source, DEFAULT_PROFILE.source])


def test_the_simulator_runs_the_recommended_second_scheduler():
    timing = ControlTiming()
    assert timing.scheduler is SECOND_SCHEDULER and timing.extender_weight == 10
    assert SECOND_SCHEDULER.plugins == ScorePlugins(fit_strategy="MostAllocated", balanced_weight=0, spread_weight=1)
    assert DEFAULT_PROFILE.extender_weight == 20 and DEFAULT_PROFILE.plugins == STOCK_PLUGINS


def write(tmp_path, text):
    path = tmp_path / "k.yaml"
    path.write_text("apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n" + text)
    return path


EXTENDER = "extenders: [{urlPrefix: 'http://x', prioritizeVerb: prioritize, weight: 3}]\n"


def test_plugins_disabled_reweighted_and_configured(tmp_path):
    path = write(tmp_path, EXTENDER + """profiles:
  - plugins:
      multiPoint: {disabled: [{name: '*'}]}
      score: {enabled: [{name: NodeResourcesFit, weight: 4}]}
    pluginConfig:
      - name: NodeResourcesFit
        args: {scoringStrategy: {type: MostAllocated, resources: [{name: cpu, weight: 3}]}}
""")
    assert load_scheduler_config(path).plugins == ScorePlugins(4, "MostAllocated", 3, 0, 0, 0)
    assert load_scheduler_config(path).extender_weight == 3


@pytest.mark.parametrize("text, where", [
    ("profiles: [{}]\n", "extenders"),
    (EXTENDER.replace("weight: 3", "weight: 0"), "extenders.0.weight"),
    (EXTENDER + "profiles: [{schedulerName: a}, {schedulerName: b}]\n", "profiles"),
    (EXTENDER + "profiles: [{pluginConfig: [{name: NodeResourcesFit, args: {scoringStrategy: "
                "{type: RequestedToCapacityRatio}}}]}]\n", "scoringStrategy.type"),
    (EXTENDER + "profiles: [{pluginConfig: [{name: NodeResourcesFit, args: {scoringStrategy: "
                "{resources: [{name: nvidia.com/gpu, weight: 1}]}}}]}]\n", "scoringStrategy.resources"),
])
def test_what_is_not_modelled_is_refused(tmp_path, text, where):
    with pytest.raises(InvalidInputError, match=where.replace(".", r"\.")):
        load_scheduler_config(write(tmp_path, text))


def context(plugins, pods=(0, 0)):
    """Two 10-core, 10 GiB nodes in one zone: one half used, one empty; the pod asks 1 core and
    1 GiB; `pods`: its workload's pods on each node (ready)."""
    cm = SimpleNamespace(total_cpu_m=np.array([10000.0, 10000.0]), total_mem_mib=np.array([10240.0, 10240.0]),
                         w_cpu_m=np.array([1000.0]), w_mem_mib=np.array([1024.0]), zone_idx=np.array([0, 0]),
                         zones=["z"], eligible=np.array([[True, True]]))
    st = SimpleNamespace(free_cpu_m=np.array([5000.0, 10000.0]), free_mem_mib=np.array([5120.0, 10240.0]),
                         ready=np.array([pods]), booting=np.zeros((1, 2), int))
    return SimpleNamespace(cm=cm, st=st, timing=ControlTiming(scheduler=SchedulerConfig("test", 1, plugins)))


def test_least_allocated_spreads_and_most_allocated_packs():
    candidates = np.array([0, 1])
    stock = plugin_scores(context(STOCK_PLUGINS), 0, candidates, STOCK_PLUGINS)
    assert list(stock) == [40 + 100 + 2 * 100, 90 + 100 + 2 * 100]   # LeastAllocated + BalancedAllocation + spread 2
    ctx = context(SECOND_SCHEDULER.plugins)
    assert list(default_plugin_scores(ctx, 0, candidates)) == [60 + 100, 10 + 100]   # MostAllocated + spread 1


def test_default_topology_spreading_favours_the_node_with_fewer_of_the_workloads_pods():
    """Two pods on node 0: hostname 2 x log(2 + 2) + 2, zone 2 x log(1 + 2) + 4 -> 11 against
    node 1's 8; normalised 100 x (11 + 8 - s) / 11 in integers (kube-scheduler's scoring.go)."""
    assert list(spread_scores(context(STOCK_PLUGINS, pods=(2, 0)), 0, np.array([0, 1]))) == [72, 100]
    assert list(spread_scores(context(STOCK_PLUGINS, pods=(0, 0)), 0, np.array([0, 1]))) == [100, 100]


def test_another_config_reaches_the_summary(tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["simulate", "--scenario", str(SCENARIO), "--days", "0.01", "--policies", "default",
               "--scheduler-config", str(DEPLOY / "kube-scheduler-config.default-profile.yaml"), "--out", str(out)])
    assert rc == 0
    timing = json.loads((out / "summary.json").read_text())["inputs"]["timing"]
    assert timing["scheduler"]["extender_weight"] == 20
    assert timing["scheduler"]["plugins"]["fit_strategy"] == "LeastAllocated"
