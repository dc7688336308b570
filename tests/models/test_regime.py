"""The regime-change detector: a step in the cost of a frame is found near its time; noise, and FPS
ramping with the cost unchanged, find nothing."""

from pathlib import Path

import numpy as np
import pytest

from wattwise.models.regime import RegimeSettings, find_change

T0 = 1_700_000_000.0
DATA = Path(__file__).resolve().parents[1] / "data"


def samples(seed, n_t=600, pods=5, step_s=1.0, change_at_s=None, factor=0.7, ramp=False, noise=0.01, block_s=0.0):
    """`pods` replicas sampled every `step_s`: power 12 + 1.6 fps + 0.01 fps^2 (x `factor` from
    `change_at_s` on), with relative noise, independent per sample or held for `block_s` per pod."""
    rng = np.random.default_rng(seed)
    t = np.repeat(T0 + step_s * np.arange(n_t), pods)
    if ramp:   # FPS climbing from 3 to 30 over the range
        fps = (np.linspace(3.0, 30.0, n_t)[:, None] * rng.uniform(0.9, 1.1, (n_t, pods))).ravel()
    else:
        fps = np.minimum(rng.uniform(0.15, 1.2, t.size) * 32.0, 32.0)
    power = 12.0 + 1.6 * fps + 0.01 * fps**2
    if change_at_s is not None:
        power = np.where(t >= T0 + change_at_s, factor * power, power)
    if block_s:
        block = ((t - T0) // block_s).astype(int)
        jitter = rng.normal(0.0, noise, (block.max() + 1, pods))[block, np.tile(np.arange(pods), n_t)]
    else:
        jitter = rng.normal(0.0, noise, t.size)
    return t, fps, power * (1.0 + jitter)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("factor", [0.7, 1.2])
def test_a_step_in_cost_is_found_near_its_time(seed, factor):
    t, fps, power = samples(seed, change_at_s=400.0, factor=factor)
    change = find_change(t, fps, power)
    assert change is not None
    assert abs(change.at_s - (T0 + 400.0)) <= 2.0
    assert change.power_shift == pytest.approx(factor - 1.0, abs=0.02)
    assert change.n_before + change.n_since == t.size and change.n_since == pytest.approx(1000, abs=10)
    assert "regime change at 2023-11-14T22:" in change.describe() and f"{factor - 1:+.0%}" in change.describe()


def test_samples_in_any_order_give_the_same_change():
    t, fps, power = samples(0, change_at_s=300.0)
    order = np.random.default_rng(1).permutation(t.size)
    shuffled, ordered = find_change(t[order], fps[order], power[order]), find_change(t, fps, power)
    assert (shuffled.at_s, shuffled.n_since) == (ordered.at_s, ordered.n_since)
    assert shuffled.power_shift == pytest.approx(ordered.power_shift, abs=1e-9)


def test_a_change_just_before_the_end_is_found_with_its_few_samples():
    t, fps, power = samples(0, change_at_s=590.0)
    change = find_change(t, fps, power)
    assert change is not None and change.at_s == T0 + 590.0 and change.n_since == 50


def test_a_segment_is_never_shorter_than_its_minimum():
    t, fps, power = samples(0, change_at_s=596.0)        # 20 samples since, fewer than a segment's 30
    change = find_change(t, fps, power)
    assert change is None or (change.n_since >= 30 and change.at_s >= T0 + 594.0)   # dated early by 2 s at most
    t, fps, power = samples(0, change_at_s=599.0, factor=0.9)   # 5 samples since: a blur, not a change
    assert find_change(t, fps, power) is None


def test_the_latest_of_two_changes_is_returned():
    t, fps, power = samples(0, change_at_s=200.0)
    power = np.where(t >= T0 + 450.0, 0.8 * power, power)
    change = find_change(t, fps, power)
    assert change.at_s == T0 + 450.0 and change.power_shift == pytest.approx(-0.2, abs=0.02)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("noise,block_s", [(0.01, 0.0), (0.03, 0.0), (0.01, 8.0), (0.03, 8.0)])
def test_pure_noise_is_no_change(seed, noise, block_s):
    assert find_change(*samples(seed, noise=noise, block_s=block_s)) is None


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("block_s", [0.0, 8.0])
def test_fps_ramping_with_the_cost_unchanged_is_no_change(seed, block_s):
    assert find_change(*samples(seed, ramp=True, block_s=block_s)) is None


def test_a_ramp_with_a_cost_change_in_it_is_found():
    t, fps, power = samples(0, ramp=True, change_at_s=300.0)
    change = find_change(t, fps, power)
    assert change is not None and abs(change.at_s - (T0 + 300.0)) <= 2.0


def test_a_shift_below_the_effect_threshold_is_ignored():
    t, fps, power = samples(0, change_at_s=300.0, factor=0.93)      # 7%: significant, but below 10%
    assert find_change(t, fps, power) is None
    assert find_change(t, fps, power, RegimeSettings(min_shift=0.05)) is not None


def test_too_few_samples_or_a_single_time_are_no_change():
    t, fps, power = samples(0, n_t=10, change_at_s=5.0)
    assert find_change(t, fps, power) is None                        # 50 samples: less than two segments
    assert find_change(np.full(100, T0), np.linspace(1, 30, 100), np.linspace(10, 60, 100)) is None
    assert find_change([], [], []) is None


def test_two_fits_that_differ_where_the_samples_do_not_are_no_change():
    """Recorded samples (tests/data/SOURCES.md): a pod moved onto the class, the cost did not change,
    and the fits of a short first segment and the rest differ by 28% at the same FPS while each
    segment's samples sit on the other's fit."""
    rows = np.loadtxt(DATA / "regime" / "moved-pod-milan-snp.csv", delimiter=",", skiprows=1)
    t, fps, power = T0 + rows[:, 0], rows[:, 1], rows[:, 2]
    assert find_change(t, fps, power) is None
    assert find_change(*samples(0, change_at_s=300.0)) is not None       # a real step still is


@pytest.mark.parametrize("factor", [0.7, 1.2])
def test_a_change_too_recent_to_date_is_seen_as_a_drift_of_the_newest_samples(factor):
    """10 samples since the change (two scrapes of 5 pods): too few to date; the newest samples sit
    off by the change. With 5 since, still seen, diluted by the tail of 10 it is judged on."""
    from wattwise.models.regime import recent_drift
    t, fps, power = samples(0, change_at_s=598.0, factor=factor)
    assert find_change(t, fps, power) is None
    drift = recent_drift(t, fps, power)
    assert drift is not None and drift.power_shift == pytest.approx(factor - 1.0, abs=0.03)
    assert drift.from_s == T0 + 598.0 and drift.n_tail == 10
    assert f"its newest 10 samples sit {factor - 1:+.0%} off the ones before" == drift.describe()
    t, fps, power = samples(0, change_at_s=599.0, factor=factor)
    drift = recent_drift(t, fps, power)
    assert drift is not None and np.sign(drift.power_shift) == np.sign(factor - 1.0)


@pytest.mark.parametrize("case", ["noise", "held noise", "ramp", "three samples"])
def test_no_drift_without_a_recent_change(case):
    from wattwise.models.regime import recent_drift
    t, fps, power = {"noise": lambda: samples(1),
                     "held noise": lambda: samples(2, block_s=20.0, noise=0.02),
                     "ramp": lambda: samples(3, ramp=True),
                     "three samples": lambda: samples(5, n_t=600, pods=1, change_at_s=597.0)}[case]()
    assert recent_drift(t, fps, power) is None
