"""Node classes' power curves from node power against utilisation (telemetry/node_curves.py), the
queries that fetch them, and node_exporter targets matched to nodes."""

import numpy as np
import pandas as pd
import pytest

from wattwise.models.power_curve import PowerCurve
from wattwise.telemetry.node_curves import (NodeCurveSettings, bundled_shape, curve_problems, fit_node_curves,
                                            format_node_table, specpower_shape)
from wattwise.telemetry.prometheus import promql
from wattwise.telemetry.prometheus.node_power import match_exporter_nodes
from wattwise.telemetry.prometheus.schema import KeplerSchema

GRID = np.linspace(0, 1, 11)
TRUTH = np.array([150, 200, 222, 245, 268, 290, 315, 340, 372, 410, 450.0])


def samples(node, util, power_w):
    return pd.DataFrame({"node": node, "t_s": np.arange(len(util), dtype=float) * 15,
                         "power_w": np.asarray(power_w, dtype=float), "util": np.asarray(util, dtype=float)})


def drawn(node, lo, hi, n=2000, truth=TRUTH, noise=0.01, seed=0):
    rng = np.random.default_rng(seed)
    util = rng.uniform(lo, hi, n)
    return samples(node, util, np.interp(util, GRID, truth) * (1 + rng.normal(0, noise, n)))


def test_a_known_curve_is_recovered_where_measured_and_follows_the_specpower_shape_outside():
    fit = fit_node_curves(pd.concat([drawn("a1", 0.2, 0.8), drawn("a2", 0.2, 0.8, seed=1)]), {"a1": "A", "a2": "A"})
    entry = fit.classes[0]
    curve = fit.curves["A"]
    assert entry["fitted"] and entry["nodes"] == ["a1", "a2"] and entry["samples_used"] == 4000
    # the end bins hold 0.20-0.25 and 0.75-0.80 only: their knots sit at their medians, 0.225 and 0.775
    assert (entry["util_min"], entry["util_max"]) == pytest.approx((0.206, 0.794), abs=0.003)
    assert entry["points_measured"] == pytest.approx([0.3, 0.4, 0.5, 0.6, 0.7])
    assert entry["note"] == "measured 22%-78%; below and above from the SPECpower shape"
    measured = np.linspace(0.225, 0.775, 23)
    assert np.max(np.abs(curve.at(measured) / np.interp(measured, GRID, TRUTH) - 1)) < 0.02
    # outside (0, 0.1, 0.2 and 0.8, 0.9, 1): the bundled shape, one scale below and above
    shape = np.array(bundled_shape())
    p = np.array(curve.power_w)
    scale_below = np.diff(p[0:3]) / np.diff(shape[0:3])
    scale_above = np.diff(p[8:11]) / np.diff(shape[8:11])
    assert np.ptp(np.r_[scale_below, scale_above]) < 1e-4 * scale_above[0]   # power_w is kept to the mW
    assert scale_above[0] == pytest.approx((TRUTH[7] - TRUTH[3]) / (shape[7] - shape[3]), rel=0.15)
    assert 0 < p[0] < p[2] and p[10] > p[8] and np.all(np.diff(p) >= 0)
    assert curve.at(0.2) == pytest.approx(222.0, rel=0.03) and curve.at(0.8) == pytest.approx(372.0, rel=0.03)
    assert curve_problems(curve) == []


def test_a_dip_in_the_measurements_is_smoothed_into_a_non_decreasing_curve():
    dipped = TRUTH.copy()
    dipped[5] = 240.0                                              # below its left neighbour
    fit = fit_node_curves(drawn("n", 0.0, 1.0, truth=dipped, noise=0.0), {})
    curve = fit.curves["n"]                                        # a node without a class label is its own class
    assert np.all(np.diff(curve.power_w) >= 0)
    assert curve.at(0.5) == pytest.approx(curve.at(0.4), rel=0.02) and curve.at(0.4) < 268.0
    assert fit.classes[0]["note"].startswith("measured 2%-98%")


@pytest.mark.parametrize("frame, note", [
    (drawn("n", 0.1, 0.9, n=60), "not fitted: 60 usable samples (< 100)"),
    (drawn("n", 0.30, 0.50), "not fitted: utilisation spans only 0.20 (< 0.30)"),
    (samples("n", [0.1] * 300 + [0.6] * 300, [100.0] * 300 + [200.0] * 300),
     "not fitted: only 2 utilisation bin(s) of 0.1 with 5+ samples (< 3)"),
])
def test_too_little_data_is_reported_not_fitted(frame, note):
    fit = fit_node_curves(frame, {"n": "c"}, expected_classes=["c", "d"])
    entries = {e["node_class"]: e for e in fit.classes}
    assert fit.curves == {} and entries["c"]["note"] == note and not entries["c"]["fitted"]
    assert entries["d"]["samples_used"] == 0 and entries["d"]["nodes"] == []


def test_unusable_samples_are_counted_by_reason():
    good = drawn("n", 0.0, 1.0, n=500)
    bad = samples("n", [0.5, 0.5, 1.5, np.nan, 0.4, -0.5], [0.0, 9e6, 300.0, 250.0, np.nan, 200.0])
    fit = fit_node_curves(pd.concat([good, bad]), {"n": "c"}, NodeCurveSettings(min_samples=100))
    entry = fit.classes[0]
    assert entry["samples_used"] == 500 and entry["fitted"]
    assert entry["samples_excluded"] == {"absurd_power": 1, "bad_util": 2, "missing_power": 1, "missing_util": 1,
                                         "zero_power": 1}
    assert fit.curves["c"].max_w < 500


def test_plausibility():
    assert curve_problems(PowerCurve.linear(100, 400)) == []
    assert curve_problems(PowerCurve((0.0, 0.5, 1.0), (100.0, 90.0, 300.0))) == \
        ["power falls as utilisation rises (at 50%)"]
    assert curve_problems(PowerCurve.linear(0, 400)) == ["idle power 0.0 W is not above 0"]
    assert curve_problems(PowerCurve.linear(100, 6000)) == ["maximum power 6000 W is above 5000 W"]


def test_the_specpower_shape_runs_from_0_to_1_and_never_falls():
    shape = np.array(bundled_shape())
    assert shape[0] == 0 and shape[-1] == 1 and np.all(np.diff(shape) >= 0)
    assert 0.1 < shape[1] < 0.25                                    # servers step up off active idle
    assert specpower_shape([PowerCurve.linear(50, 150)]) == pytest.approx(GRID)


def test_the_table_names_each_class_and_why():
    fit = fit_node_curves(pd.concat([drawn("a", 0.0, 1.0), drawn("b", 0.4, 0.5)]), {"a": "A", "b": "B"})
    table = format_node_table(fit.classes)
    assert table.splitlines()[0].split() == ["node_class", "nodes", "used", "excl", "util", "min-max", "idle", "W",
                                             "max", "W", "curve"]
    assert "fitted: measured 2%-98%" in table and "not fitted: utilisation spans only 0.10" in table


def test_node_queries_take_one_zone_and_never_sum_zones():
    assert promql.node_cpu_power_w(KeplerSchema.V0_10, 60, gauge=True) == \
        'sum by (node_name) (avg_over_time(kepler_node_cpu_watts{zone="package"}[60s]))'
    assert promql.node_cpu_power_w(KeplerSchema.V0_10, 60) == \
        'sum by (node_name) (rate(kepler_node_cpu_joules_total{zone="package"}[60s]))'
    assert promql.node_cpu_power_w(KeplerSchema.V0_9, 60) == \
        "sum by (instance) (rate(kepler_node_package_joules_total[60s]))"   # modes dynamic + idle
    with pytest.raises(ValueError):
        promql.node_cpu_power_w(KeplerSchema.V0_9, 60, gauge=True)
    with pytest.raises(ValueError):
        promql.node_cpu_power_w(KeplerSchema.V0_10, 60, zone='package"}) or vector(1', gauge=True)
    assert promql.kepler_node_utilisation(60) == "avg by (node_name) (avg_over_time(kepler_node_cpu_usage_ratio[60s]))"
    assert promql.node_exporter_utilisation(60) == (
        '1 - sum by (instance) (rate(node_cpu_seconds_total{mode=~"idle|iowait"}[60s])) '
        "/ sum by (instance) (rate(node_cpu_seconds_total[60s]))")


def test_node_exporter_targets_are_matched_by_name_then_host_name_then_address():
    matched, unmatched = match_exporter_nodes(
        ["node-a", "10.0.0.2:9100", "node-c:9100", "10.0.0.9:9100"], {"10.0.0.2:9100": "node-b"},
        {"node-a", "node-b", "node-c"})
    assert matched == {"node-a": "node-a", "10.0.0.2:9100": "node-b", "node-c:9100": "node-c"}
    assert unmatched == ["10.0.0.9:9100"]
    assert match_exporter_nodes(["10.0.0.2:9100", "x:9100"], {"10.0.0.2:9100": "node-b"}, set()) == \
        ({"10.0.0.2:9100": "node-b", "x:9100": "x:9100"}, [])
