import numpy as np
import pandas as pd

from wattwise.telemetry.hygiene import HygieneRules, clean_samples, merge_counts


def frame(power, fps=None, pod="p1", workload="ns/w", node_class="c", t0=0.0, step=15.0, node_power=None):
    n = len(power)
    df = pd.DataFrame({"t_s": t0 + step * np.arange(n), "workload": workload, "pod": pod, "node": "n1",
                       "node_class": node_class, "power_w": np.asarray(power, float),
                       "fps": np.asarray(fps if fps is not None else 10 + np.arange(n) % 7, float), "drop_fps": 0.0})
    if node_power is not None:
        df["node_power_w"] = node_power
    return df


def test_clean_data_passes_untouched():
    df = frame(50 + np.arange(40) % 5)
    out, counts = clean_samples(df)
    assert len(out) == 40 and counts == {}
    np.testing.assert_array_equal(out["power_w"], df["power_w"])


def test_each_rule_counts_its_reason():
    power = 50 + np.arange(60) % 5.0
    power[3] = np.nan
    power[5] = -1
    power[7] = 5_000_000       # megawatts on a small node: not even a unit slip
    power[9] = 0.0             # zero power while frames flow
    power[11] = 52 * 1000      # mJ read as J: rescaled, kept
    power[13] = 400            # spike, plausible magnitude but 8x the median
    out, counts = clean_samples(frame(power))
    assert counts == {("ns/w", "c"): {"non_finite": 1, "negative": 1, "absurd_power": 1, "zero_power": 1,
                                      "unit_slip_rescaled": 1, "spike": 1}}
    assert len(out) == 55
    assert out.loc[out["t_s"] == 11 * 15, "power_w"].item() == 52.0


def test_pod_above_its_node_is_excluded():
    df = frame([50.0] * 10, node_power=[100.0] * 9 + [30.0])
    out, counts = clean_samples(df)
    assert counts[("ns/w", "c")] == {"pod_above_node": 1} and len(out) == 9


def test_stale_fps_run_is_excluded_after_the_threshold():
    fps = np.r_[np.arange(10.0), np.full(80, 12.5), np.arange(10.0)]
    out, counts = clean_samples(frame(50 + np.arange(100) % 3.0, fps=fps), HygieneRules(stale_after_s=600))
    assert counts[("ns/w", "c")] == {"stale": 79}
    assert len(out) == 21


def test_short_repeat_is_not_stale():
    fps = np.r_[np.arange(10.0), np.full(5, 12.5)]
    _, counts = clean_samples(frame(np.full(15, 50.0), fps=fps))
    assert counts == {}


def test_all_zero_vm_pod_is_excluded_and_counted_per_pair():
    df = pd.concat([frame(np.zeros(20), pod="vm", node_class="vm"), frame(np.full(20, 40.0), pod="ok")])
    out, counts = clean_samples(df)
    assert counts == {("ns/w", "vm"): {"zero_power": 20}}
    assert set(out["pod"]) == {"ok"}


def test_merge_counts_adds():
    assert merge_counts({("a", "b"): {"x": 1}}, {("a", "b"): {"x": 2, "y": 1}}) == {("a", "b"): {"x": 3, "y": 1}}


def test_stale_detection_does_not_depend_on_row_order():
    fps = np.r_[np.arange(10.0), np.full(80, 12.5), np.arange(10.0)]
    df = pd.concat([frame(50 + np.arange(100) % 3.0, fps=fps, pod="a"), frame(np.full(100, 40.0), pod="b")])
    shuffled = df.sample(frac=1.0, random_state=3)
    _, counts = clean_samples(shuffled, HygieneRules(stale_after_s=600))
    assert counts == {("ns/w", "c"): {"stale": 79}}
