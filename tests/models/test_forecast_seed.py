"""Seeding a forecaster with history read back (a restarted door): the state is the one `add`
gives for each sample in time order, so a restarted scaler forecasts as one that ran through it."""

from __future__ import annotations

import numpy as np

from tests.models.builders import node, node_class, workload
from wattwise.models.forecast import DAY_S, DemandForecaster
from wattwise.models.plan_cycle import CycleInputs, CycleSettings, PlanCycle
from wattwise.models.ports import CarbonReading

STEP_S = 15.0
H = 3600.0


def demand(t_s: np.ndarray, seed: int = 0) -> np.ndarray:
    """A morning ramp (80 to 400 fps from 08:00 to 08:30), noise, a gap (NaN) and one absurd read."""
    rng = np.random.default_rng(seed)
    tod = t_s % DAY_S
    fps = 80.0 + 320.0 * np.clip((tod - 8 * H) / 1800.0, 0.0, 1.0) * (tod < 18 * H) + rng.normal(0, 5, len(t_s))
    fps[(tod >= 3 * H) & (tod < 3 * H + 600)] = np.nan
    fps[len(fps) // 3] = 900_000.0
    return fps


def added(keys, times, fps_rows, lead_s=135.0) -> DemandForecaster:
    f = DemandForecaster(keys, [lead_s] * len(keys))
    for t, row in zip(times.tolist(), fps_rows):
        f.add(t, row)
    return f


def assert_same_state(a: DemandForecaster, b: DemandForecaster) -> None:
    """What was learned, compared: the profile and the bin under way exactly; the forecasts due and
    the misses to rounding (a forecast's margin is added then taken off again, and the seeded
    forecaster worked its margins out from fewer misses early in its replay)."""
    assert np.array_equal(a._daily, b._daily, equal_nan=True)
    assert np.array_equal(a._seen, b._seen, equal_nan=True)
    assert a._acc_bin == b._acc_bin and a._acc == b._acc
    assert [t for t, _ in a._recent] == [t for t, _ in b._recent]
    assert np.array_equal(np.vstack([v for _, v in a._recent]), np.vstack([v for _, v in b._recent]), equal_nan=True)
    for name in ("_due", "_misses"):
        for x, y in zip(getattr(a, name), getattr(b, name)):
            assert [t for t, _ in x] == [t for t, _ in y], name
            assert np.allclose([v for _, v in x], [v for _, v in y], rtol=1e-12, atol=1e-9), name


def test_seeding_a_day_and_a_half_learns_what_adding_each_sample_does():
    times = np.arange(0.0, 1.5 * DAY_S, STEP_S)
    fps = demand(times)
    ran = added(["w"], times, [[v] for v in fps])
    seeded = DemandForecaster(["w"], [135.0])
    assert seeded.seed("w", times, fps) == int(np.isfinite(fps).sum())
    assert_same_state(seeded, ran)
    later = times[-1] + STEP_S
    for f in (ran, seeded):
        f.add(later, [123.0])
    assert np.allclose(seeded.expected(later, [123.0]), ran.expected(later, [123.0]), rtol=1e-12)


def test_the_order_samples_come_in_and_repeated_times_do_not_matter():
    times = np.arange(0.0, DAY_S, 60.0)
    fps = demand(times)
    in_order, shuffled = DemandForecaster(["w"], [135.0]), DemandForecaster(["w"], [135.0])
    in_order.seed("w", times, fps)
    perm = np.random.default_rng(3).permutation(len(times))
    shuffled.seed("w", np.r_[times[perm], times[:10]], np.r_[fps[perm], np.full(10, 1e6)])   # repeats: first kept
    assert_same_state(shuffled, in_order)


def test_workloads_seeded_one_by_one_learn_what_adding_them_together_does():
    times = np.arange(0.0, DAY_S + 9 * H, 60.0)
    a, b = demand(times, 1), 2.0 * demand(times, 2)
    ran = added(["a", "b"], times, np.column_stack([a, b]))
    seeded = DemandForecaster(["a", "b"], [135.0, 135.0])
    seeded.seed("b", times, b)
    seeded.seed("a", times, a)
    assert_same_state(seeded, ran)
    later = times[-1] + 60.0
    for f in (ran, seeded):
        f.add(later, [300.0, 600.0])
    assert np.allclose(seeded.expected(later, [300.0, 600.0]), ran.expected(later, [300.0, 600.0]), rtol=1e-12)


def test_a_workload_rekeyed_in_mid_run_and_seeded_forecasts_as_one_that_ran_alongside():
    """`a` has run live for a day; `b` arrives at 08:00 with yesterday's ramp read back: what it
    expects 16 minutes ahead (a GPU TEE's start-up) is what a forecaster that saw b's day expects.
    (At a bin's first refresh: within a bin the one that ran through it plans with the margin it
    worked out at the bin's start, the other with one worked out from its misses since.)"""
    times = np.arange(0.0, DAY_S + 8 * H, 60.0)
    a, b = demand(times, 1), demand(times, 2)
    live = added(["a"], times, [[v] for v in a], lead_s=960.0)
    reference = added(["b"], times, [[v] for v in b], lead_s=960.0)
    joined = live.rekeyed(["a", "b"], [960.0, 960.0])
    joined.seed("b", times, b)
    now = times[-1] + 60.0
    joined.add(now, [a[-1], b[-1]])
    reference.add(now, [b[-1]])
    alone = added(["a"], np.r_[times, now], [[v] for v in np.r_[a, a[-1]]], lead_s=960.0)
    got, want = joined.expected(now, [a[-1], b[-1]])[1], reference.expected(now, [b[-1]])[0]
    assert want > b[-1] + 120.0                        # the ramp's second bin (+160 fps), expected before it comes
    assert abs(got - want) < 1e-9 * want
    assert np.array_equal(joined._daily[0], alone._daily[0], equal_nan=True)     # `a` kept what it learned


def test_history_at_or_after_the_last_refresh_added_is_left_out_and_history_says_what_was_seeded():
    f = DemandForecaster(["a", "b"], [135.0, 135.0])
    f.add(1000.0, [10.0, 20.0])
    assert f.seed("b", [100.0, 400.0, 1000.0, 1300.0], [5.0, np.nan, 7.0, 8.0]) == 1
    h = f.histories()["b"]
    assert (h.seeded_samples, h.seeded_from_s, h.seeded_to_s) == (1, 100.0, 400.0)
    assert f.histories()["a"].seeded_samples == 0 and f.histories()["a"].seeded_from_s is None
    day = DemandForecaster(["w"], [135.0])
    day.seed("w", np.arange(0.0, DAY_S, STEP_S), np.full(int(DAY_S / STEP_S), 50.0))
    assert (day.histories()["w"].profile_bins, day.histories()["w"].bins) == (95, 96)   # the last bin is still open


def _step(cycle: PlanCycle, t_s: float, fps: float) -> float:
    c = node_class("amx", amx=True, cores=64)
    decision = cycle.step(CycleInputs(now_s=t_s, node_classes={c.name: c}, nodes=[node("n0", c), node("n1", c)],
                                      carbon={"z1": CarbonReading("z1", 300.0, t_s, "test")},
                                      workloads=[workload("a", fps=fps)]))
    return decision.snapshots[0].workloads[0].demand.expected_fps


def test_a_plan_cycle_seeded_on_its_first_step_expects_yesterdays_ramp():
    times = np.arange(0.0, DAY_S + 7 * H + 59 * 60, 60.0)
    fps = np.where((times % DAY_S >= 8 * H) & (times % DAY_S < 18 * H), 400.0, 80.0)
    now = times[-1] + 60.0                          # 07:59 on day two, the ramp at 08:00
    fresh, seeded = PlanCycle(CycleSettings(interval_s=60.0)), PlanCycle(CycleSettings(interval_s=60.0))
    seeded.seed_forecast("default/a", times, fps)
    seeded.seed_forecast("default/gone", times, fps)     # not in the step: not seeded, not kept
    assert _step(fresh, now, 80.0) == 80.0
    assert _step(seeded, now, 80.0) > 390.0
    history = seeded.forecast_history()
    assert set(history) == {"default/a"} and history["default/a"].seeded_samples == len(times)
    assert fresh.forecast_history()["default/a"].seeded_samples == 0
    assert not seeded._seeds
