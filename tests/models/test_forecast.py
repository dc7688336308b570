"""Predictive pre-warming: the forecaster learns a daily ramp, follows a trend, learns a margin
from its misses, never forecasts below now, and the planner plans for it and says so."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from wattwise.models.forecast import DAY_S, DemandForecaster, ForecastSettings, startup_lead_s
from wattwise.models.admission import Taint, TaintEffect, Toleration
from wattwise.models.plan_cycle import CycleInputs, CycleSettings, PlanCycle
from wattwise.models.planner import plan, usable_classes
from wattwise.models.scenario import load_scenario
from wattwise.models.workload import Demand

from tests.models.test_scenario import BUNDLED


def daily_ramp(t_s: float) -> float:
    """10 fps at night, 100 fps from 08:00 (a shift starts)."""
    return 100.0 if 8 * 3600 <= t_s % DAY_S < 20 * 3600 else 10.0


def test_a_daily_ramp_is_expected_a_lead_ahead_from_the_second_day():
    f = DemandForecaster(["w"], [300.0])
    step = 60.0
    before_ramp = 8 * 3600 - 120.0          # two minutes before 08:00, lead five minutes
    seen = {}
    for t in np.arange(0, 2 * DAY_S, step):
        f.add(t, [daily_ramp(t)])
        if t % DAY_S == before_ramp:
            seen[int(t // DAY_S)] = float(f.expected(t, [daily_ramp(t)])[0])
    assert abs(seen[0] - 10.0) < 1e-6         # day one: nothing learned, now's demand
    assert seen[1] >= 95.0                    # day two: the ramp, before it comes


def test_a_rising_trend_is_extrapolated_over_the_lead_and_a_falling_one_is_not():
    up = DemandForecaster(["w"], [120.0])
    down = DemandForecaster(["w"], [120.0])
    for t in np.arange(0, 600, 15.0):
        up.add(t, [10.0 + t / 10])             # +1 fps every 10 s
        down.add(t, [100.0 - t / 10])
    assert abs(up.expected(585, [68.5])[0] - (68.5 + 12.0)) < 0.5
    assert down.expected(585, [41.5])[0] == 41.5


def test_misses_teach_a_margin_and_unknown_demand_gives_no_forecast():
    f = DemandForecaster(["w", "v"], [60.0, 60.0], ForecastSettings(quantile=0.9))
    rng = np.random.default_rng(0)
    for t in np.arange(0, 3600, 60.0):
        f.add(t, [50.0 + rng.uniform(0, 20), np.nan])   # noise the trend cannot see
    out = f.expected(3600, [50.0, np.nan])
    assert 52.0 < out[0] < 75.0 and np.isnan(out[1])        # a margin above now, learned from the misses


def test_off_means_no_forecast():
    f = DemandForecaster(["w"], [60.0], ForecastSettings(enabled=False))
    f.add(0, [5.0])
    assert np.isnan(f.expected(0, [5.0])[0])


def _leads(snap, interval_s: float) -> dict[str, float]:
    usable = usable_classes(snap)
    return {w.key: startup_lead_s(w, [snap.node_classes[c] for c in usable[w.key]], interval_s)
            for w in snap.workloads}


def test_the_lead_is_the_refresh_interval_plus_the_slowest_start_the_workload_may_use():
    """A start is the node's (`wake_s`: 300 s for h100-cc, the 120 s default elsewhere) and then
    the replica's."""
    leads = _leads(load_scenario(BUNDLED).snapshot, 60.0)
    assert leads["city/city-traffic"] == 60.0 + 300.0 + 150.0        # confidential GPU: h100-cc
    assert leads["retail/checkout-cams"] == 60.0 + 120.0 + 9.0       # TDX only: spr-amx-tdx
    assert leads["retail/parking-lpr"] == 60.0 + 300.0 + 150.0       # SNP or TDX: h100-cc admits it too


def test_a_node_start_counts_in_the_lead():
    """The node autoscaler starts a node only for a Pending pod, so a pre-warmed replica that
    needs one is ready the node's start plus its own later: a slower-starting node class
    lengthens the lead by the difference."""
    snap = load_scenario(BUNDLED).snapshot
    classes = dict(snap.node_classes)
    classes["spr-amx-tdx"] = replace(classes["spr-amx-tdx"], wake_s=400.0)
    leads = _leads(replace(snap, node_classes=classes), 60.0)
    assert leads["retail/checkout-cams"] == 60.0 + 400.0 + 9.0


def _gpu_tainted(snap):
    """GPU nodes tainted as GPU clouds taint them, the GPU workloads tolerating it."""
    taint = Taint("nvidia.com/gpu", TaintEffect.NO_SCHEDULE, "present")
    tolerate = Toleration(key="nvidia.com/gpu", operator="Exists", effect=TaintEffect.NO_SCHEDULE)
    gpu = {c.name for c in snap.node_classes.values() if c.gpu_count}
    return replace(snap, nodes=tuple(replace(n, taints=n.taints + (taint,)) if n.node_class in gpu else n
                                     for n in snap.nodes),
                   workloads=tuple(replace(w, placement=replace(w.placement,
                                                                tolerations=w.placement.tolerations + (tolerate,)))
                                   if w.needs_gpu else w for w in snap.workloads))


def test_a_class_whose_taint_the_workload_does_not_tolerate_sets_no_lead():
    """A CPU-only workload never starts on tainted GPU nodes: their 150 s GPU TEE start-up is not
    its lead; the GPU workload, tolerating the taint, keeps it."""
    leads = _leads(_gpu_tainted(load_scenario(BUNDLED).snapshot), 15.0)
    assert leads["retail/parking-lpr"] == 15.0 + 120.0 + 9.0   # spr-amx-tdx (9 s) and milan-snp (8 s) only
    assert leads["city/city-traffic"] == 15.0 + 300.0 + 150.0


def test_the_plan_cycle_plans_a_refresh_plus_the_start_up_on_classes_the_workload_may_use_ahead():
    """With 60 s refreshes the plan made at 07:59 is the last before a step at 08:00 (a 9 s lead
    alone never reaches it); and a CPU-only workload is planned with its CPU classes' node and
    replica start-up, not the start-up of GPU nodes whose taint keeps it off them."""
    snap = _gpu_tainted(load_scenario(BUNDLED).snapshot)
    cycle = PlanCycle(CycleSettings(interval_s=60.0))
    decision = cycle.step(CycleInputs(now_s=0.0, node_classes=snap.node_classes, nodes=snap.nodes,
                                      carbon=snap.carbon, workloads=snap.workloads))
    leads = {w.key: w.demand.lead_s for w in decision.snapshots[0].workloads}
    assert leads["retail/parking-lpr"] == 60.0 + 120.0 + 9.0
    assert leads["city/city-traffic"] == 60.0 + 300.0 + 150.0


def test_the_planner_plans_for_what_is_expected_and_says_so():
    snap = load_scenario(BUNDLED).snapshot
    w = next(w for w in snap.workloads if w.key == "retail/checkout-cams")
    now = w.demand_fps
    ahead = replace(snap, workloads=tuple(replace(x, demand=Demand(streams=48, expected_fps=now * 1.5, lead_s=9.0))
                                          if x.key == w.key else x for x in snap.workloads))
    base, _ = plan(snap)
    warmed, _ = plan(ahead)
    wp = warmed.workloads[w.key]
    assert wp.replicas > base.workloads[w.key].replicas
    assert abs(wp.forecast_added_fps - now * 0.5) < 1e-6 and base.workloads[w.key].forecast_added_fps == 0
    assert any(r.startswith(f"pre-warming: {now * 1.5:.1f} fps expected within 9 s") for r in wp.reasons), wp.reasons


def test_the_learned_margin_covers_the_quantile_it_promises():
    """Scored against the forecast without its margin: scored against the margined forecast, the
    misses shrink by the margin and the next margin with them, and the margin swings between
    the quantile and zero (it covered about 75% of demand instead of 90%)."""
    f = DemandForecaster(["w"], [60.0], ForecastSettings(quantile=0.9, bin_s=900.0))
    rng = np.random.default_rng(1)
    demand = 50.0 + rng.uniform(0, 20, size=int(2 * DAY_S / 60))
    expected = []
    for i, d in enumerate(demand):
        f.add(i * 60.0, [d])
        expected.append(float(f.expected(i * 60.0, [d])[0]))
    later = demand[1 + len(demand) // 2:]                     # demand a lead (60 s) after each forecast
    covered = np.mean(later <= np.array(expected[len(demand) // 2:-1]))
    assert 0.85 <= covered <= 0.97


def test_a_refresh_at_the_same_time_or_earlier_is_learned_once():
    """A wake within the same quantised second (or a clock stepping back) learns nothing twice:
    the trend, the daily profile and the misses keep one sample per time."""
    once, twice = DemandForecaster(["w"], [120.0]), DemandForecaster(["w"], [120.0])
    for t in np.arange(0, 1200, 15.0):
        once.add(t, [10.0 + t / 10])
        twice.add(t, [10.0 + t / 10])
        twice.add(t, [500.0])                                   # same time: not learned
        twice.add(t - 5.0, [500.0])                             # earlier: not learned
    assert twice.expected(1185, [128.5])[0] == once.expected(1185, [128.5])[0]
    assert np.allclose(twice._daily, once._daily, equal_nan=True)


def _expected_before_four(spike) -> dict[int, float]:
    """Flat 180 fps but for `spike(t)` on the first day; per day, what is expected at 15:58."""
    f = DemandForecaster(["w"], [210.0])
    seen = {}
    for t in np.arange(0, 3 * DAY_S, 60.0):
        f.add(t, [spike(t) if t < DAY_S else 180.0])
        if t % DAY_S == 16 * 3600 - 120:
            seen[int(t // DAY_S)] = float(f.expected(t, [180.0])[0])
    return seen


def test_one_absurd_sample_is_not_replayed_the_next_days():
    """999,999 fps (under max_fps) once at 16:07 on day one: a bin's median leaves it out."""
    seen = _expected_before_four(lambda t: 999_999.0 if t == 16 * 3600 + 420 else 180.0)
    assert seen[1] < 200.0 and seen[2] < 200.0, seen


def test_a_burst_filling_a_bin_is_replayed_for_a_day_at_most():
    """Twenty minutes of 999,999 fps on day one enter the profile (fading by half a day); the
    step is held to how far apart the bins of the last day lie, so day three expects flat demand."""
    seen = _expected_before_four(lambda t: 999_999.0 if 16 * 3600 <= t < 16 * 3600 + 1200 else 180.0)
    assert seen[1] > 100_000.0            # day two: the last day had it
    assert seen[2] < 200.0, seen          # day three: the last day did not


def test_refreshes_every_15_s_or_every_60_s_learn_the_same_margin():
    """Misses are kept by age and scored at their due time: a live loop (15 s) and the simulator
    (60 s) learn one margin from one demand curve (a count of misses kept covered 50 min at 15 s
    and 200 min at 60 s, and a forecast was scored up to a refresh after it was due)."""
    def demand(t_s: float) -> float:
        return 550.0 - 450.0 * np.cos(2 * np.pi * (t_s % DAY_S) / DAY_S)

    end = DAY_S + 6 * 3600
    added = {}
    for step in (15.0, 60.0):
        f = DemandForecaster(["w"], [150.0])
        for t in np.arange(0, end + 1, step):
            f.add(t, [demand(t)])
        added[step] = float(f.expected(end, [demand(end)])[0]) - demand(end)
    assert abs(added[15.0] - added[60.0]) < 0.1, added      # 0.97 fps apart before


def test_a_forecast_due_in_a_gap_between_reads_is_not_scored():
    """Reads 600 s apart with a 30 s lead: what demand was when a forecast fell due is unknown,
    and a guess (now's value, or a line between the reads) would teach a margin that keeps a
    workload with no demand warm."""
    f = DemandForecaster(["w"], [30.0])
    for t in np.arange(0, 4 * 3600, 600.0):
        f.add(t, [10.0 if (t // 600) % 2 else 0.0])
    assert f.expected(4 * 3600, [0.0])[0] == 0.0
