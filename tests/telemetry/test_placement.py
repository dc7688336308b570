"""Placing each power sample on its node, and counting counter resets as events (pure)."""

import numpy as np
import pandas as pd

from wattwise.telemetry.hygiene import count_reset_events
from wattwise.telemetry.prometheus.client import Series
from wattwise.telemetry.prometheus.placement import kepler_cannot_place, place_power_samples


def power(*rows):
    """rows: (pod, kepler_node, t_s, power_w)"""
    return pd.DataFrame([{"namespace": "v", "pod_name": p, "kepler_node": k, "t_s": float(t), "power_w": float(w)}
                         for p, k, t, w in rows])


def info(*rows):
    """rows: (pod, node, t_s)"""
    return pd.DataFrame([{"namespace": "v", "pod_name": p, "node": n, "t_s": float(t), "_": 1.0} for p, n, t in rows],
                        columns=["namespace", "pod_name", "node", "t_s", "_"])


def placed_at(out, t):
    row = out[out["t_s"] == t]
    assert len(row) == 1
    return row.iloc[0]


def test_each_sample_keeps_the_node_it_was_measured_on():
    out, _ = place_power_samples(power(("s-0", "a", 0, 50), ("s-0", "a", 15, 51), ("s-0", "b", 30, 80)),
                                 info(), {"a", "b"})
    assert list(out.sort_values("t_s")["node"]) == ["a", "a", "b"] and not out["ambiguous"].any()


def test_two_nodes_at_once_keep_the_one_kube_pod_info_confirms():
    out, _ = place_power_samples(power(("s-0", "a", 30, 40), ("s-0", "b", 30, 80)),
                                 info(("s-0", "b", 30)), {"a", "b"})
    row = placed_at(out, 30)
    assert (row["node"], row["power_w"], row["ambiguous"]) == ("b", 80.0, False)


def test_a_frozen_terminated_series_rating_zero_gives_way():
    """Kepler 0.10 keeps a terminated pod's counter: it rates exactly 0 W on the old node."""
    out, _ = place_power_samples(power(("s-0", "a", 30, 0), ("s-0", "b", 30, 80)),
                                 info(("s-0", "a", 30), ("s-0", "b", 30)), {"a", "b"})
    row = placed_at(out, 30)
    assert (row["node"], row["power_w"]) == ("b", 80.0)


def test_undecidable_samples_are_ambiguous_not_summed():
    out, _ = place_power_samples(power(("s-0", "a", 30, 40), ("s-0", "b", 30, 80)), info(), {"a", "b"})
    row = placed_at(out, 30)
    assert row["ambiguous"] and np.isnan(row["power_w"]) and row["node"] == ""


def test_an_exporter_address_is_learnt_as_its_node():
    """Kepler 0.9 without relabelling: `instance` is the exporter's address, not a node name."""
    out, aliases = place_power_samples(
        power(("s-0", "10.0.0.1:9102", 0, 40), ("s-0", "10.0.0.2:9102", 60, 80), ("s-0", "10.0.0.2:9102", 75, 81)),
        info(("s-0", "a", 0), ("s-0", "b", 60)), {"a", "b"})
    assert aliases == {"10.0.0.1:9102": "a", "10.0.0.2:9102": "b"}
    assert list(out.sort_values("t_s")["node"]) == ["a", "b", "b"]  # at 75 s by alias, kube_pod_info silent


def test_without_kube_state_metrics_kepler_labels_are_the_nodes():
    out, aliases = place_power_samples(power(("s-0", "n1", 0, 40)), info(), set())
    assert list(out["node"]) == ["n1"] and aliases == {}


def resets(*rows):
    """rows: (kepler_node, pod, t_s)"""
    return pd.DataFrame([{"kepler_node": k, "namespace": "v", "pod_name": p, "t_s": float(t), "_": 1.0}
                         for k, p, t in rows])


def pairs(*rows):
    """rows: (pod, t_s, workload, node_class)"""
    return pd.DataFrame([{"namespace": "v", "pod_name": p, "t_s": float(t), "workload": w, "node_class": c}
                         for p, t, w, c in rows])


def test_one_restart_resetting_every_series_of_a_node_is_one_event():
    # two pods on node a (every container's counter reset: one row per pod and step after `max by`)
    steps = resets(*[(k, p, t) for k in ("a",) for p in ("det-0", "cls-0") for t in (600, 615, 630)])
    counts, total = count_reset_events(steps, pairs(("det-0", 600, "v/det", "x"), ("cls-0", 600, "v/cls", "x")), 15)
    assert total == 1
    assert counts == {("v/det", "x"): {"counter_resets": 1}, ("v/cls", "x"): {"counter_resets": 1}}


def test_separate_moments_and_separate_nodes_are_separate_events():
    steps = resets(("a", "det-0", 600), ("a", "det-0", 615), ("a", "det-0", 3000), ("b", "det-1", 600))
    lookup = pairs(("det-0", 0, "v/det", "x"), ("det-1", 0, "v/det", "y"))
    counts, total = count_reset_events(steps, lookup, 15)
    assert total == 3
    assert counts == {("v/det", "x"): {"counter_resets": 2}, ("v/det", "y"): {"counter_resets": 1}}


def test_a_reset_is_charged_to_the_pair_the_pod_was_in_then():
    steps = resets(("b", "s-0", 5000))
    lookup = pairs(("s-0", 0, "v/det", "class-a"), ("s-0", 4000, "v/det", "class-b"))
    counts, _ = count_reset_events(steps, lookup, 15)
    assert counts == {("v/det", "class-b"): {"counter_resets": 1}}


def test_no_resets():
    assert count_reset_events(resets(), pairs(), 15) == ({}, 0)


def series(ns, pod, node):
    return Series({"pod_namespace": ns, "pod_name": pod, "node_name": node}, np.zeros(1), np.zeros(1))


def test_kube_pod_info_over_time_is_fetched_only_when_kepler_cannot_place_samples():
    labels = ("pod_namespace", "pod_name", "node_name")
    steady = [series("v", "d-1", "a"), series("v", "d-2", "b")]
    assert not kepler_cannot_place(steady, labels, {"a", "b"})
    assert kepler_cannot_place(steady + [series("v", "d-1", "b")], labels, {"a", "b"})  # d-1 moved
    assert kepler_cannot_place([series("v", "d-1", "10.0.0.1:9102")], labels, {"a", "b"})  # not a node name
    assert kepler_cannot_place(steady, labels, set())  # nothing to check Kepler's labels against
