"""Carbon that is missing is not free: a zone without a reading, or with an untrusted one, counts
at no less than the one conservative default (`models.snapshot.DEFAULT_CARBON_G_PER_KWH`, the
snapshot's `settings.carbon_default_g_per_kwh`), so the plan never floods the zone it knows least
about for carbon reasons."""

from dataclasses import replace

from hypothesis import HealthCheck, given, settings, strategies as st

from wattwise.models.costs import zone_intensity, zone_weights
from wattwise.models.planner import plan
from wattwise.models.ports import CarbonReading
from wattwise.models.snapshot import DEFAULT_CARBON_G_PER_KWH, Objective, PlannerSettings

from tests.models.builders import node, node_class, snapshot, workload

DEFAULT = DEFAULT_CARBON_G_PER_KWH
intensity = st.floats(0, 3000, allow_nan=False)
share = st.sampled_from([("carbon", None), ("energy", None)]) | st.builds(lambda w: ("balanced", w), st.floats(0, 1))


def _snap(known: dict[str, float], unknown: str, unknown_reading: CarbonReading | None, objective):
    cls = node_class("c", amx=True, cores=64)
    zones = sorted(known) + [unknown]
    snap = snapshot([cls], [node(f"n-{z}", cls, zone=z) for z in zones], [workload(fps=30)], carbon=known,
                    objective=objective[0])
    readings = {z: r for z, r in snap.carbon.items() if z != unknown}
    if unknown_reading is not None:
        readings[unknown] = unknown_reading
    return replace(snap, carbon=readings, objective=Objective(*objective))


def _at_default(snap, zone):
    return replace(snap, carbon={**snap.carbon, zone: CarbonReading(zone, DEFAULT, snap.now_s, "test")})


@st.composite
def missing_or_untrusted(draw, zone="unknown"):
    kind = draw(st.sampled_from(["missing", "stale", "default"]))
    if kind == "missing":
        return None
    return CarbonReading(zone, draw(intensity | st.just(float("nan"))), 0.0, "test", status=kind)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["a", "b", "c"]), intensity, min_size=0, max_size=3), missing_or_untrusted(),
       share)
def test_a_zone_without_a_trustworthy_reading_is_never_cheaper_than_the_default(known, reading, objective):
    snap = _snap(known, "unknown", reading, objective)
    zones = sorted(known) + ["unknown"]
    assert zone_intensity(snap, "unknown") >= DEFAULT
    weight = zone_weights(snap, zones)["unknown"]
    # the same zone with a fresh reading at the default: the reference mean moves with it too
    assert weight >= zone_weights(_at_default(snap, "unknown"), zones)["unknown"] - 1e-12
    # and never cheaper than a zone of the same snapshot read (fresh) at the default
    beside = replace(snap, carbon={**snap.carbon, "ref": CarbonReading("ref", DEFAULT, 0.0, "test")})
    k = zone_weights(beside, zones + ["ref"])
    assert k["unknown"] >= k["ref"] - 1e-12


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.floats(0, DEFAULT * 0.98), missing_or_untrusted())
def test_the_planner_never_prefers_the_unknown_zone_for_carbon(known_g_per_kwh, reading):
    """Two identical nodes: one in a zone read below the default, one in a zone without a
    trustworthy reading. Under the carbon objective the work goes to the known, cleaner zone."""
    snap = _snap({"known": known_g_per_kwh}, "unknown", reading, ("carbon", None))
    wp = plan(snap)[0].workloads["default/w"]
    assert wp.replicas > 0 and set(wp.by_node) == {"n-known"}, (wp.by_node, snap.carbon)


def test_a_missing_zone_counts_at_the_default_and_the_default_is_a_setting():
    snap = _snap({"known": 100.0}, "unknown", None, ("carbon", None))
    assert zone_intensity(snap, "unknown") == DEFAULT == PlannerSettings().carbon_default_g_per_kwh == 500.0
    lower = replace(snap, settings=replace(snap.settings, carbon_default_g_per_kwh=300.0))
    assert zone_intensity(lower, "unknown") == 300.0
    stale = replace(snap, carbon={**snap.carbon, "unknown": CarbonReading("unknown", 900.0, 0.0, "t", status="stale")})
    assert zone_intensity(stale, "unknown") == 900.0          # an untrusted value above the default counts as read
    fresh = replace(snap, carbon={**snap.carbon, "unknown": CarbonReading("unknown", 20.0, 0.0, "t")})
    assert zone_intensity(fresh, "unknown") == 20.0           # a trustworthy reading counts as read


def test_a_value_older_than_the_limit_counts_as_untrusted_however_freshly_fetched():
    """A provider answering a nine-hour-old value (or WattTime's lagging /historical) with status
    fresh: its own time says it is old, and it counts at no less than the default."""
    now_s = 100_000.0
    snap = replace(snapshot([node_class("c")], [node("n1", node_class("c"), zone="z")], [workload()]), now_s=now_s)
    low = 80.0
    for age_s, counted in ((3600.0, low), (7200.0, low), (9 * 3600.0, DEFAULT)):
        reading = CarbonReading("z", low, now_s - age_s, "test")          # status fresh, trustworthy
        assert reading.trustworthy
        assert zone_intensity(replace(snap, carbon={"z": reading}), "z") == counted, age_s
    tighter = replace(snap, settings=PlannerSettings(carbon_max_age_s=600.0),
                      carbon={"z": CarbonReading("z", low, now_s - 3600.0, "test")})
    assert zone_intensity(tighter, "z") == DEFAULT


def test_an_absurd_forecast_point_never_makes_a_zone_look_cleaner():
    """A trustworthy 450 g/kWh with one negative (or nan, or inf) forecast point is still 450."""
    snap = _snap({"de": 450.0}, "x", None, ("carbon", None))
    base = snap.carbon["de"]
    for bad in (-300.0, float("nan"), float("inf")):
        reading = replace(base, forecast=((snap.now_s + 600, bad),))
        assert zone_intensity(replace(snap, carbon={"de": reading}), "de") == 450.0
    mixed = replace(base, forecast=((snap.now_s + 600, -300.0), (snap.now_s + 1200, 350.0)))
    assert zone_intensity(replace(snap, carbon={"de": mixed}), "de") == 400.0
