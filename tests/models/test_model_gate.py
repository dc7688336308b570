"""The quality gate: a fitted model replaces the one in use only when it is well supported, accurate
on its hold-out, physically plausible and no worse than the model in use on the same samples."""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from wattwise.models.energy import WorkloadClassModel
from wattwise.models.model_gate import Candidate, Evidence, GateSettings, Verdict, judge, mape
from wattwise.models.regime import RegimeChange
from wattwise.models.replica_model import ReplicaPowerModel

PAIR = ("video/detector", "intel-amx-tdx")


def model(c0, c1, c2=0.0, capacity=32.0, prior=False, std=0.0):
    return WorkloadClassModel(*PAIR, ReplicaPowerModel.from_coefficients(c0, c1, c2), capacity,
                              capacity_std_fps=std, prior=prior, n_samples=0 if prior else 1000,
                              source="prior" if prior else "fitted")


def samples(c0, c1, c2=0.0, n=600, lo=4.0, hi=32.0, noise=0.01, seed=0):
    rng = np.random.default_rng(seed)
    fps = rng.uniform(lo, hi, n)
    power = (c0 + c1 * fps + c2 * fps**2) * (1 + rng.normal(0, noise, n))
    return fps, power


def fitted(fps, power, holdout_fraction=0.2, degree=1, capacity=None):
    """A candidate as `telemetry.fitting` makes one: trained on the first part, shipped fitted on all."""
    holdout = np.arange(fps.size) >= int((1 - holdout_fraction) * fps.size)
    trial = ReplicaPowerModel(degree=degree).fit(fps[~holdout, None], power[~holdout])
    final = ReplicaPowerModel(degree=degree).fit(fps[:, None], power)
    cap = float(np.percentile(fps, 95)) if capacity is None else capacity
    m = WorkloadClassModel(*PAIR, final, cap, prior=False, n_samples=int(fps.size), source="kepler-0.10")
    return Candidate(m, trial, Evidence(fps, power, holdout))


def exact(c0, c1, c2=0.0, capacity=32.0, **kw):
    """A candidate that fits its own samples perfectly (both its models are the truth)."""
    fps, power = samples(c0, c1, c2, noise=0.0, **kw)
    power_model = ReplicaPowerModel.from_coefficients(c0, c1, c2)
    holdout = np.arange(fps.size) >= int(0.8 * fps.size)
    return Candidate(WorkloadClassModel(*PAIR, power_model, capacity, prior=False, n_samples=fps.size),
                     power_model, Evidence(fps, power, holdout))


def slope(power, fps):
    c = [*power.coef_, 0.0]
    return c[0] + 2 * c[1] * fps


OLD = model(12.0, 1.6, 0.01)
PRIOR = model(10.0, 2.0, capacity=30.0, prior=True, std=6.0)


def test_a_cost_that_fell_by_30_percent_replaces_the_current_model():
    fps, power = samples(12.0 * 0.7, 1.6 * 0.7, 0.01 * 0.7)
    d = judge(*PAIR, fitted(fps, power, degree=2), OLD, PRIOR, max_power_w=400.0)
    assert d.verdict is Verdict.ACCEPTED and d.accepted and d.model.source == "kepler-0.10"
    assert d.candidate_mape < 0.02 and d.incumbent_mape > 0.3
    assert len(d.reasons) == 1 and "hold-out error" in d.reasons[0] and d.reasons[0].category == "accepted"
    assert "\n" not in d.summary()


def test_falling_power_never_replaces_a_good_model_and_says_why():
    fps, power = samples(40.0, -0.3)                       # fits its data well, but power falls with FPS
    d = judge(*PAIR, fitted(fps, power), OLD, PRIOR, max_power_w=400.0)
    assert d.verdict is Verdict.KEPT_CURRENT and d.model is OLD
    assert [r.category for r in d.reasons] == ["implausible"]
    assert "power falls as FPS rises" in d.reasons[0]


@pytest.mark.parametrize("cand, current, expect, category, text", [
    (lambda: exact(12, 1.6, n=150), OLD, Verdict.KEPT_CURRENT, "samples", "150 samples (needs 200)"),
    (lambda: exact(12, 1.6, lo=20, hi=25), OLD, Verdict.KEPT_CURRENT, "fps_range", "needs 30%"),
    (lambda: exact(-5, 2.0), OLD, Verdict.KEPT_CURRENT, "implausible", "standing power -5.0 W"),
    (lambda: exact(500, 2.0), None, Verdict.KEPT_PRIOR, "implausible", "standing power 500.0 W"),
    (lambda: exact(12, 1.6, capacity=90.0), OLD, Verdict.KEPT_CURRENT, "implausible", "capacity 90.0 fps"),
    (lambda: fitted(*samples(12, 1.6, noise=0.25)), None, Verdict.KEPT_PRIOR, "holdout_error", "hold-out error"),
])
def test_each_rule_rejects_with_one_line(cand, current, expect, category, text):
    d = judge(*PAIR, cand(), current, PRIOR, max_power_w=400.0)
    assert d.verdict is expect and not d.accepted
    assert d.model is (current if current is not None else PRIOR)
    assert category in [r.category for r in d.reasons]
    assert any(text in r for r in d.reasons), d.reasons
    assert all("\n" not in r for r in d.reasons)


def test_capacity_outside_the_observed_range_passes_within_the_priors():
    d = judge(*PAIR, exact(12, 1.6, capacity=36.0), OLD, PRIOR, max_power_w=400.0)   # prior 30 +- 12
    assert d.accepted


def test_a_fit_never_saturated_does_not_lower_the_capacity():
    """No frame dropped: the FPS seen (here 40-80% of the prior's capacity) is what replicas were asked
    for, a lower bound of what they can do; the power fit ships, the capacity in use stays."""
    fps, power = samples(12.0, 1.6, 0.01, lo=0.4 * 30.0, hi=0.8 * 30.0)
    candidate = fitted(fps, power, degree=2)                      # capacity: the 95th percentile, ~23.4
    assert candidate.model.capacity_fps < 0.8 * 30.0 and not candidate.saturated
    d = judge(*PAIR, candidate, None, PRIOR, max_power_w=400.0)
    assert d.accepted and d.model.capacity_fps == PRIOR.capacity_fps and d.model.power is candidate.model.power
    assert "capacity 30.0 fps kept: no sample saturated" in d.reasons[0]
    d = judge(*PAIR, candidate, OLD, PRIOR, max_power_w=400.0)    # a measured model in use: its capacity
    assert d.model.capacity_fps == OLD.capacity_fps
    saturated = replace(candidate, saturated=True)                 # seen dropping frames there: measured
    d = judge(*PAIR, saturated, None, PRIOR, max_power_w=400.0)
    assert d.accepted and d.model.capacity_fps == candidate.model.capacity_fps


def test_no_better_than_the_current_model_keeps_it():
    fps, power = samples(12.0, 1.6, 0.01, noise=0.02, seed=3)
    d = judge(*PAIR, fitted(fps, power, degree=2), OLD, PRIOR, max_power_w=400.0)   # OLD is the truth itself
    assert d.verdict is Verdict.KEPT_CURRENT and d.model is OLD
    assert [r.category for r in d.reasons] == ["worse_than_current"]
    assert d.candidate_mape > d.incumbent_mape


def test_a_refit_of_an_unchanged_world_keeps_the_measured_model():
    """A candidate better than the model in use by less than the hold-out's sampling error (1 point)
    does not replace it; one better by more does; against a prior, no worse is enough."""
    fps, power = samples(12.0, 1.6, 0.01, noise=0.02, seed=5)
    candidate = fitted(fps, power, degree=2)
    close = model(12.0 * 1.01, 1.6 * 1.01, 0.01 * 1.01)           # 1% off: about as good as the candidate
    d = judge(*PAIR, candidate, close, PRIOR, max_power_w=400.0)
    assert d.candidate_mape < d.incumbent_mape < d.candidate_mape + 0.01
    assert d.verdict is Verdict.KEPT_CURRENT and d.model is close
    assert [r.category for r in d.reasons] == ["worse_than_current"]
    assert "by more than 1.0%" in d.reasons[0]
    off = model(12.0 * 1.05, 1.6 * 1.05, 0.01 * 1.05)              # 5% off: the candidate is clearly better
    assert judge(*PAIR, candidate, off, PRIOR, max_power_w=400.0).accepted
    as_prior = model(12.0 * 1.01, 1.6 * 1.01, 0.01 * 1.01, prior=True)
    assert judge(*PAIR, candidate, as_prior, None, max_power_w=400.0).accepted


def test_without_a_current_model_the_prior_is_the_one_to_beat():
    fps, power = samples(12.0, 1.6, 0.01)
    d = judge(*PAIR, fitted(fps, power, degree=2), None, PRIOR, max_power_w=400.0)
    assert d.accepted and "prior" in d.reasons[0]
    d = judge(*PAIR, fitted(fps, power, degree=2), None, None)
    assert d.accepted and "no model in use" in d.reasons[0]


def test_a_current_prior_in_the_file_is_kept_as_prior():
    fps, power = samples(40.0, -0.3)
    d = judge(*PAIR, fitted(fps, power), PRIOR, None)
    assert d.verdict is Verdict.KEPT_PRIOR and d.model is PRIOR


def test_no_candidate_keeps_what_is_in_use():
    d = judge(*PAIR, None, OLD, PRIOR, missing="not fitted: 12 training samples (< 30)")
    assert d.verdict is Verdict.KEPT_CURRENT and d.model is OLD and d.reasons == ("not fitted: 12 training samples (< 30)",)
    d = judge(*PAIR, None, None, None)
    assert d.verdict is Verdict.KEPT_PRIOR and d.model is None


CHANGE = RegimeChange(at_s=1_700_000_000.0, power_shift=-0.3, f_stat=1e4, n_before=2000, n_since=600)


def test_after_a_regime_change_the_candidate_of_the_samples_since_replaces_the_model():
    fps, power = samples(12.0 * 0.7, 1.6 * 0.7, 0.01 * 0.7)
    d = judge(*PAIR, fitted(fps, power, degree=2), OLD, PRIOR, max_power_w=400.0, regime=CHANGE)
    assert d.accepted and d.regime is CHANGE and d.incumbent_mape > 0.3
    assert "600 samples since the regime change at 2023-11-14T22:13:20Z (power -30% at the same FPS)" in d.reasons[0]
    assert d.as_dict()["regime_change_s"] == CHANGE.at_s and d.as_dict()["regime_power_shift"] == -0.3


def test_too_few_samples_since_a_regime_change_keep_the_model_and_say_it_waits():
    fps, power = samples(12.0 * 0.7, 1.6 * 0.7, 0.01 * 0.7, n=60)
    d = judge(*PAIR, fitted(fps, power, degree=2), OLD, PRIOR, max_power_w=400.0, regime=CHANGE)
    assert d.verdict is Verdict.KEPT_CURRENT and d.model is OLD and d.regime is CHANGE
    assert d.reasons[0] == ("regime change at 2023-11-14T22:13:20Z (power -30% at the same FPS), 60 samples since: "
                            "waiting for more (60 samples (needs 200), 12 hold-out samples (needs 40))")
    assert d.reasons[0].category == "samples" and len(d.reasons) == 1      # the rest passed on the 60
    assert d.samples_needed == 140 and d.as_dict()["samples_needed"] == 140  # 200, 40 of them in the hold-out
    d = judge(*PAIR, None, OLD, PRIOR, missing="not fitted: 20 training samples (< 30)", regime=CHANGE)
    assert d.verdict is Verdict.KEPT_CURRENT and d.model is OLD and d.reasons[0].category == "samples"
    assert d.reasons[0].endswith("600 samples since: waiting for more (not fitted: 20 training samples (< 30))")
    assert d.samples_needed == 0                        # 600 are in: more samples are not what it lacks
    d = judge(*PAIR, None, OLD, PRIOR, missing="not fitted", regime=replace(CHANGE, n_since=25))
    assert d.samples_needed == 175


def test_a_short_hold_out_since_a_regime_change_needs_the_samples_that_fill_it():
    fps, power = samples(12.0 * 0.7, 1.6 * 0.7, 0.01 * 0.7, n=300)
    c = fitted(fps, power, degree=2)
    short = Candidate(c.model, c.holdout_power, Evidence(c.evidence.fps, c.evidence.power_w,
                                                         np.arange(300) >= 270))     # 30 in the hold-out
    d = judge(*PAIR, short, OLD, PRIOR, max_power_w=400.0, regime=CHANGE)
    assert not d.accepted and d.samples_needed == 100           # 400 at a tenth in the hold-out
    assert judge(*PAIR, short, OLD, PRIOR, max_power_w=400.0).samples_needed == 0   # no change: no wait


def test_the_other_rules_still_judge_the_samples_since_a_regime_change():
    fps, power = samples(40.0, -0.3)                               # after the "change" power falls with FPS
    d = judge(*PAIR, fitted(fps, power), OLD, PRIOR, max_power_w=400.0, regime=CHANGE)
    assert d.verdict is Verdict.KEPT_CURRENT and d.model is OLD
    assert [r.category for r in d.reasons][:2] == ["regime_change", "implausible"]
    assert d.reasons[0].startswith("judged on the 600 samples since the regime change at")


def test_unknown_maximum_power_falls_back_to_the_default():
    d = judge(*PAIR, exact(1500, 2.0), None, None, max_power_w=None, settings=GateSettings(default_max_power_w=1000))
    assert not d.accepted and any("0-1000 W" in r for r in d.reasons)


def test_mape_ignores_samples_without_power():
    assert mape(np.array([1.0, 2.0]), np.array([0.0, 0.0])) is None
    assert mape(np.array([11.0, 5.0]), np.array([10.0, 0.0])) == pytest.approx(0.1)


coefs = st.floats(0.5, 200.0)
slopes = st.floats(0.01, 5.0)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(c0=coefs, fall=slopes, cur_c0=coefs, cur_c1=slopes, cur_prior=st.booleans(), seed=st.integers(0, 10_000))
def test_power_falling_with_fps_never_replaces_any_model(c0, fall, cur_c0, cur_c1, cur_prior, seed):
    """However well a falling curve fits its samples, and however wrong the model in use is."""
    c0 = c0 + fall * 40.0                       # power stays positive over the range
    fps, power = samples(c0, -fall, seed=seed, hi=40.0)
    current = model(cur_c0, cur_c1, prior=cur_prior)
    for candidate in (fitted(fps, power), fitted(fps, power, degree=2), exact(c0, -fall, hi=40.0, capacity=38.0)):
        if all(slope(candidate.model.power, f) >= 0 for f in (fps.min(), fps.max())):
            continue                            # noise made this fit of a nearly flat truth rise: not the case
        d = judge(*PAIR, candidate, current, PRIOR, max_power_w=2000.0)
        assert not d.accepted and d.model is current
        assert d.verdict is (Verdict.KEPT_PRIOR if cur_prior else Verdict.KEPT_CURRENT)
        assert "implausible" in [r.category for r in d.reasons]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(c0=st.floats(-50.0, 300.0), c1=st.floats(-2.0, 5.0), c2=st.floats(-0.05, 0.05), noise=st.floats(0.0, 0.3),
       n=st.integers(20, 800), lo=st.floats(0.0, 30.0), width=st.floats(0.5, 60.0),
       current=st.sampled_from(["none", "measured", "prior"]), seed=st.integers(0, 10_000))
def test_the_decision_is_consistent(c0, c1, c2, noise, n, lo, width, current, seed):
    """Accepted: every threshold holds and the candidate ships. Otherwise: what was in use stays."""
    fps, power = samples(c0, c1, c2, n=n, lo=lo, hi=lo + width, noise=noise, seed=seed)
    cur = {"none": None, "measured": OLD, "prior": PRIOR}[current]
    candidate = fitted(fps, power, degree=2)
    s = GateSettings()
    d = judge(*PAIR, candidate, cur, PRIOR, max_power_w=400.0, settings=s)
    if d.accepted:
        m = d.model                          # the candidate, its capacity never below the one in use's
        assert m.power is candidate.model.power and len(d.reasons) == 1
        incumbent = cur if cur is not None else PRIOR
        assert m.capacity_fps == max(candidate.model.capacity_fps, incumbent.capacity_fps)
        assert n >= s.min_samples and d.candidate_mape < s.max_holdout_mape
        assert d.candidate_mape <= d.incumbent_mape
        assert 0 <= m.intercept_w <= 400.0
        for f in (fps.min(), fps.max()):
            assert slope(m.power, f) >= 0
        assert fps.max() - fps.min() >= s.min_fps_spread * m.capacity_fps
    else:
        assert d.model is (cur if cur is not None else PRIOR)
        assert d.verdict is (Verdict.KEPT_CURRENT if current == "measured" else Verdict.KEPT_PRIOR)
        assert d.reasons and all(r.category != "accepted" for r in d.reasons)
