"""Learning online from real telemetry, end to end (issue 14).

Two `wattwise serve` processes (one reading Kepler 0.10, one Kepler 0.9, as the production and
kepler-0.9 overlays pin them) plan the recorded cluster the fake Kubernetes API serves, refitting
every 10 s over the last 60 s from a real Prometheus that scrapes, every second, a replay exporter
driven by the simulator's physics (`tests/e2e/world.py`: both Kepler label sets, the Prometheus
Operator's target labels, the pipeline's FPS gauges, kube-state-metrics). One timeline, shared by
both (a director thread, times from the start):

- 20 s: StatefulSet pod `parking-lpr-0` moves from icx-sgx-1 to milan-snp-1 (new UID, 2 s gap; Kepler
  0.10 keeps its terminated series on icx-sgx-1); 30 s: Kepler restarts on icx-sgx-1 (every counter
  of that node from zero); 35 s: one lobby-cams replica starts serving half its capacity.
- Once both services plan checkout-cams from fitted models (more replicas on spr-amx-tdx, the
  cheaper class): a model upgrade cuts checkout-cams' power on m7i-metal-48xl by 30%, and at the
  same moment Kepler starts attributing power on spr-amx-tdx falling as FPS rises.

The cases: (3) both pairs of the moved pod are fitted right; (4) the saturating replica adds
replicas within one refresh; (1) the upgrade shifts the served plan within one refit period once
the samples since it are enough for the gate (the refit finds the change and fits only what came
after it, `models/regime.py`; the bound is spelled out at `shift_bound_s`); (2) the implausible
fits on spr-amx-tdx never replace its good model.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest

from tests.e2e.world import (CHECKOUT, ICX, LOBBY, M7I, MILAN, MOVER, NS, PARKING, SPR, Recorder, World, build)
from tests.kube_fake import wait_until
from tests.live.serve_proc import Served, serve, write_kubeconfig
from tests.prometheus_fixture import INSTALL_HINT, missing_binaries
from wattwise.models import persistence
from wattwise.models.model_gate import GateSettings
from wattwise.models.regime import RegimeSettings
from wattwise.telemetry.fit_cli import FitJob, fit_from_prometheus
from wattwise.telemetry.prometheus import PrometheusClient, PrometheusPowerFpsSource
from wattwise.telemetry.prometheus.schema import KeplerSchema
from wattwise.telemetry.prometheus.source import SourceSettings

pytestmark = pytest.mark.slow

SCHEMAS = ("0.10", "0.9")
WINDOW_S, EVERY_S, SCRAPE_S = 60, 10, 1
MOVE_AT_S, RESTART_AT_S, SATURATE_AT_S, MOVE_GAP_S = 20.0, 30.0, 35.0, 2.0
UPGRADE_BY_S = 150.0      # the upgrade waits for both services' fitted models, but not longer
SLACK_S = 25.0            # ModelDirectory's 5 s check, a 1 s refresh, a loaded two-core machine
RATE_WINDOW_S = 4         # rate() over four 1 s scrapes: the first samples after a change still mix the old cost
LEFT_OUT = 0.10           # samples hygiene leaves out (partial rate windows, missing FPS): about 5%
LATENCY_S = 15.0          # a refit's run (~3 s), ModelDirectory's 5 s check, a 1 s refresh, a 1 s scrape,
                          # the 0.5 s plan poll, and 4.5 s for a loaded two-core machine
UPGRADE, SLOWDOWN = 0.7, 0.5
LOBBY_POD = "lobby-cams-5d9f7c6b8-"   # its first replica (name completed at start)
PARKING_PAIRS = ((PARKING, ICX), (PARKING, MILAN))


def split(plan: dict | None) -> tuple[int, int]:
    """checkout-cams' planned replicas on (spr-amx-tdx, m7i-metal-48xl)."""
    w = next((w for w in (plan or {}).get("workloads", ()) if w["key"] == CHECKOUT), None)
    if w is None:
        return 0, 0
    by = {}
    for p in w["placements"]:
        by[p["node_class"]] = by.get(p["node_class"], 0) + p["replicas"]
    return by.get(SPR, 0), by.get(M7I, 0)


def model_entry(plan: dict, workload: str, node_class: str) -> dict | None:
    return next((m for m in plan["inputs"]["models"] if (m["workload"], m["node_class"]) == (workload, node_class)),
                None)


def replicas(plan: dict, key: str) -> int:
    return next(w["replicas"] for w in plan["workloads"] if w["key"] == key)


def fitted(plan: dict | None, pairs) -> bool:
    return plan is not None and all((model_entry(plan, *p) or {}).get("kind") == "fitted" for p in pairs)


@dataclass
class Run:
    world: World
    served: dict[str, Served]
    recorders: dict[str, Recorder]
    models_dir: dict[str, Path]
    history: dict[str, list[tuple[float, dict]]] = field(default_factory=dict)   # each version of the models file
    t: dict[str, float] = field(default_factory=dict)                             # the timeline, wall seconds
    before: dict[str, dict] = field(default_factory=dict)                         # plans as the upgrade came
    lobby_pod: str = ""
    stop: threading.Event = field(default_factory=threading.Event)

    def elapsed(self) -> float:
        return time.time() - self.world.started_s

    def truth_w(self, workload: str, node_class: str, fps: float, factor: float | None = None) -> float:
        truth = self.world.truth(workload, node_class)
        f = truth.power_factor if factor is None else factor
        return f * truth.model.power.power_w(fps)

    def median_fps(self, workload: str, node_class: str) -> float:
        """The median FPS served: offered uniformly from 0.15x to 1.2x capacity, served up to it."""
        return 0.675 * self.world.truth(workload, node_class).capacity_fps


def direct(run: Run) -> None:
    """The timeline (see the module notes); also keeps every version of each models file."""
    c = run.world.cluster
    seen: dict[str, float] = {}
    while not run.stop.wait(0.25):
        for schema, d in run.models_dir.items():
            path = d / "energy-models.json"
            try:
                stamp = path.stat().st_mtime_ns
                if seen.get(schema) != stamp:
                    models, _ = persistence.load(path)
                    seen[schema] = stamp
                    run.history.setdefault(schema, []).append(
                        (time.time(), {(m.workload, m.node_class): m for m in models}))
            except (FileNotFoundError, ValueError):
                pass
        el = run.elapsed()
        if "moved" not in run.t and el >= MOVE_AT_S:
            run.t["moved"] = time.time()
            c.move_pod(NS, MOVER, "milan-snp-1", gap_s=MOVE_GAP_S, ip="10.244.9.99")
        if "restarted" not in run.t and el >= RESTART_AT_S:
            run.t["restarted"] = time.time()
            c.restart_kepler("icx-sgx-1", down_s=2.0)
        if "saturated" not in run.t and el >= SATURATE_AT_S:
            run.t["saturated"] = time.time()
            c.saturate(NS, run.lobby_pod, SLOWDOWN)
        if "upgraded" not in run.t:
            plans = {s: r.latest() for s, r in run.recorders.items()}
            ready = all(fitted(p, ((CHECKOUT, SPR), (CHECKOUT, M7I))) and split(p)[0] > split(p)[1]
                        for p in plans.values())
            if ready or el >= UPGRADE_BY_S:
                run.before.update(plans)
                run.t["upgraded"] = time.time()
                c.scale_power(CHECKOUT, M7I, run.world.truth(CHECKOUT, M7I).power_factor * UPGRADE)
                c.invert_power(CHECKOUT, SPR)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    missing = missing_binaries()
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: {INSTALL_HINT}", pytrace=False)
    tmp = tmp_path_factory.mktemp("learning")
    world = build(tmp / "world")
    served, recorders, dirs = {}, {}, {}
    r = None
    try:
        kubeconfig = write_kubeconfig(tmp / "kubeconfig", world.api.url)
        for schema in SCHEMAS:
            d = tmp / f"kepler-{schema}"
            (d / "models").mkdir(parents=True)
            dirs[schema] = d / "models"
            served[schema] = serve(d, [
                "serve", "--scaler", "--extender", "--kubeconfig", str(kubeconfig), "--host", "127.0.0.1",
                "--grpc-port", "0", "--health-port", "0", "--http-port", "0", "--plan-inline", "--refresh-s", "1",
                "--grace-s", "2", "--prometheus", world.prometheus.url, "--models", str(dirs[schema]),
                "--refit-every", f"{EVERY_S}s", "--refit-window", f"{WINDOW_S}s", "--scrape-interval", f"{SCRAPE_S}s",
                "--kepler-schema", schema])
            recorders[schema] = Recorder(served[schema], every_s=0.5).start()
        lobby = sorted(name for (ns, name) in world.cluster.pods if name.startswith(LOBBY_POD))[0]
        r = Run(world, served, recorders, dirs, lobby_pod=lobby)
        director = threading.Thread(target=direct, args=(r,), daemon=True, name="e2e-director")
        director.start()
        yield r
        r.stop.set()
        director.join(5)
    finally:
        if r is not None:
            r.stop.set()
        for rec in recorders.values():
            rec.stop()
        codes = {schema: s.stop() for schema, s in served.items()}
        world.stop()
    assert all(code == 0 for code in codes.values()), {s: served[s].log()[-3000:] for s in served}


def wait_for(run: Run, event: str, by_s: float) -> float:
    assert wait_until(lambda: event in run.t, max(0.0, by_s - run.elapsed())), f"{event} never came: {run.t}"
    return run.t[event]


# -- (3) a pod moves between classes: both pairs fitted right --------------------------------------

@pytest.mark.parametrize("schema", SCHEMAS)
def test_a_pod_moved_between_classes_splits_into_both_pairs_fitted_right(run, schema):
    moved = wait_for(run, "moved", MOVE_AT_S + 10)

    def first_with_both():
        return next(((t, m) for t, m in run.history.get(schema, ())
                     if all(p in m and not m[p].prior for p in PARKING_PAIRS)), None)
    assert wait_until(lambda: first_with_both() is not None, max(1.0, 150 - run.elapsed())), \
        run.served[schema].log()[-4000:]
    written_s, models = first_with_both()
    assert written_s - WINDOW_S < moved, ("the first fit of both pairs holds the move", written_s - moved, [
        (round(t - moved, 1), [(e["node_class"], e.get("last_refit"), e.get("last_refit_reasons"))
                               for pair in PARKING_PAIRS for e in [model_entry(p, *pair) or {}]])
        for t, p in run.recorders[schema].plans[::4] if moved - 10 < t < written_s])
    # neither the move nor the Kepler restart changes what a frame costs: no regime change is named
    named = {(round(t - moved, 1), e["node_class"], e["last_refit_regime_change_at"])
             for t, p in run.recorders[schema].plans for pair in PARKING_PAIRS
             for e in [model_entry(p, *pair) or {}] if e.get("last_refit_regime_change_at")}
    assert not named, sorted(named)
    errors = {}
    for pair in PARKING_PAIRS:
        fps = run.median_fps(*pair)
        got, want = models[pair].power.power_w(fps), run.truth_w(*pair, fps)
        errors[pair[1]] = got / want - 1
        assert abs(got / want - 1) <= 0.05, f"{schema} {pair}: {got:.2f} W at {fps:.1f} fps, truth {want:.2f} W"
    print(f"\nKepler {schema}: parking-lpr fitted {written_s - run.world.started_s:.0f} s in, power at the median FPS "
          + ", ".join(f"{c} {e:+.1%}" for c, e in errors.items()))
    # their costs differ twofold: one pair lumped into the other would be far off
    assert run.truth_w(PARKING, ICX, 3.0) > 1.6 * run.truth_w(PARKING, MILAN, 3.0)

    # what the refit read, sample by sample, with the same code over the move
    url = run.world.prometheus.url
    settings = SourceSettings(workload_label="wattwise.io/workload", scrape_interval_s=SCRAPE_S,
                              schema=KeplerSchema(schema))
    with PrometheusClient(url) as client:
        source = PrometheusPowerFpsSource(client, settings)
        samples = source.samples(moved - 15, moved + 25, SCRAPE_S)
    mover = samples[samples["pod"] == f"{NS}/{MOVER}"]
    before, after = mover[mover["t_s"] < moved - 1], mover[mover["t_s"] > moved + MOVE_GAP_S + 5]
    assert set(before["node"]) == {"icx-sgx-1"} and set(before["node_class"]) == {ICX}
    assert set(after["node"]) == {"milan-snp-1"} and set(after["node_class"]) == {MILAN}
    assert len(before) >= 10 and len(after) >= 10
    assert set(mover["workload"]) == {PARKING}
    assert source.last.workload_source == "kube_pod_labels wattwise.io/workload"
    assert source.last.kepler_node_aliases == {}            # Kepler 0.10's node_name, 0.9's relabelled instance

    # the Kepler restart on icx-sgx-1: one counter reset, counted against the pairs on that node only
    restarted = wait_for(run, "restarted", RESTART_AT_S + 10)
    assert wait_until(lambda: time.time() > restarted + 15, 30)
    report = fit_from_prometheus(FitJob(url, settings, step_s=SCRAPE_S), restarted - 15, restarted + 12).report
    resets = {(p["workload"], p["node_class"]): p["counter_resets"] for p in report["pairs"]}
    assert report["counter_resets"] == 1 and resets[(PARKING, ICX)] == 1, resets
    assert all(n == 0 for pair, n in resets.items() if pair != (PARKING, ICX)), resets


# -- (4) a replica saturating below its modelled capacity --------------------------------------------

@pytest.mark.parametrize("schema", SCHEMAS)
def test_a_replica_saturating_below_its_capacity_adds_replicas_within_one_refresh(run, schema):
    saturated = wait_for(run, "saturated", SATURATE_AT_S + 10)
    capacity = run.world.truth(LOBBY, M7I).capacity_fps
    rec = run.recorders[schema]

    def corrected():
        return [(t, p) for t, p in rec.plans
                if t > saturated and "corrected_from_fps" in (model_entry(p, LOBBY, M7I) or {})]
    assert wait_until(lambda: corrected(), 30), rec.plans[-1][1]["inputs"]["models"] if rec.plans else rec.errors
    before = [p for t, p in rec.plans if t < saturated]
    assert before and replicas(before[-1], LOBBY) == 3 and model_entry(before[-1], LOBBY, M7I)["kind"] == "prior"
    t_corrected, _ = corrected()[0]
    # within one refresh of the correction (1 s, plus a scrape of the dropped frames it plans for:
    # the correction can be read a scrape before the drops that size the replicas)
    grown = [(t, p) for t, p in corrected() if replicas(p, LOBBY) > 3]
    assert grown, [(round(t - t_corrected, 1), replicas(p, LOBBY)) for t, p in corrected()[:10]]
    t_first, first = grown[0]
    entry = model_entry(first, LOBBY, M7I)
    assert t_first - t_corrected <= 1.0 + SCRAPE_S + 0.5, (t_first - t_corrected, [
        (round(t - t_corrected, 1), w["replicas"], w.get("unplaced_replicas"), w["demand_fps"], w["reasons"],
         p["plan_version"], p["generated_at"])
        for t, p in corrected() if t <= t_first for w in p["workloads"] if w["key"] == LOBBY][:12])
    assert t_first - saturated <= 15.0
    assert entry["corrected_from_fps"] == pytest.approx(capacity, rel=0.01)
    # what the replica serves now (x0.95), not an average with the minute before
    assert entry["capacity_fps"] == pytest.approx(0.95 * SLOWDOWN * capacity, rel=0.1)
    assert "dropped frames" in entry["correction_reason"]
    later = [p for t, p in rec.plans if t >= t_first]
    assert all(replicas(p, LOBBY) >= replicas(first, LOBBY) for p in later)
    print(f"\nKepler {schema}: lobby-cams 3 -> {replicas(first, LOBBY)} replicas {t_first - saturated:.1f} s after "
          f"a replica slowed to half its capacity (planned with {entry['capacity_fps']:.1f} fps)")


# -- (1) a model upgrade on one class shifts the plan ----------------------------------------------

def pods_of(run: Run, workload: str, node_class: str) -> int:
    c = run.world.cluster
    with c.lock:
        return sum(1 for p in c.pods.values() if p.workload == workload and p.node and p.running
                   and c.nodes[p.node].node_class == node_class)


def detect_fill_s(run: Run) -> float:
    """The detector's minimum segment: 30 samples of the five pods, at one a second."""
    return RegimeSettings().min_segment_samples / pods_of(run, CHECKOUT, M7I) * SCRAPE_S


def detect_bound_s(run: Run) -> float:
    """From the upgrade to a plan naming the change: the detector's minimum segment (less what
    hygiene leaves out) plus the rate window, then at most one period to the next refit, plus latency."""
    return detect_fill_s(run) / (1 - LEFT_OUT) + RATE_WINDOW_S + EVERY_S + LATENCY_S


def shift_bound_s(run: Run) -> float:
    """From the upgrade to the shifted plan: the gate's minimum of clean samples since the change
    (200 of five pods at one a second, less what hygiene leaves out: 44 s) plus the rate window,
    then at most one refit period to the refit that has them, plus latency: 73 s here. (At the
    defaults, 15 s steps and a 4 h period, the 200 samples of five pods take 11 minutes: the shift
    comes within one period and those minutes.)"""
    fill_s = GateSettings().min_samples / pods_of(run, CHECKOUT, M7I) * SCRAPE_S / (1 - LEFT_OUT)
    return fill_s + RATE_WINDOW_S + EVERY_S + LATENCY_S


def refit_story(rec: Recorder, since_s: float, pair) -> list[tuple[float, str, str]]:
    """What the refits decided for `pair` after `since_s`, each distinct decision once."""
    out: list[tuple[float, str, str]] = []
    for t, p in rec.plans:
        e = model_entry(p, *pair) or {}
        step = (e.get("last_refit") or "", "; ".join(e.get("last_refit_reasons") or ()))
        if t > since_s and (not out or out[-1][1:] != step):
            out.append((round(t - since_s, 1), *step))
    return out

@pytest.mark.parametrize("schema", SCHEMAS)
def test_a_cost_falling_by_30_percent_shifts_the_served_plan_within_one_refit_period(run, schema):
    upgraded = wait_for(run, "upgraded", UPGRADE_BY_S + 10)
    before = run.before[schema]
    assert fitted(before, ((CHECKOUT, SPR), (CHECKOUT, M7I))), before["inputs"]["models"]
    spr, m7i = split(before)
    assert spr > m7i, f"before the upgrade the cheaper class, spr-amx-tdx, holds more replicas: {spr} vs {m7i}"
    rec = run.recorders[schema]
    assert pods_of(run, CHECKOUT, M7I) == 5
    limit_s, detect_s = shift_bound_s(run), detect_bound_s(run)

    def shifted():
        return next(((t, p) for t, p in rec.plans if t > upgraded and split(p)[1] > split(p)[0]), None)
    assert wait_until(lambda: shifted() is not None, max(1.0, upgraded + limit_s - time.time())), \
        (split(rec.latest()), refit_story(rec, upgraded, (CHECKOUT, M7I)), run.served[schema].log()[-4000:])
    t_shift, plan = shifted()
    assert t_shift - upgraded <= limit_s, refit_story(rec, upgraded, (CHECKOUT, M7I))
    entry = model_entry(plan, CHECKOUT, M7I)
    assert entry["kind"] == "fitted"

    # /plan named the change within one period of it having enough samples to be seen, and dated it
    def named():
        return next(((t, e) for t, p in rec.plans if t > upgraded
                     for e in [model_entry(p, CHECKOUT, M7I) or {}] if e.get("last_refit_regime_change_at")), None)
    assert named() is not None, [model_entry(p, CHECKOUT, M7I) for t, p in rec.plans if t > upgraded][-3:]

    def dated_s(e: dict) -> float:
        return datetime.fromisoformat(e["last_refit_regime_change_at"].replace("Z", "+00:00")).timestamp() - upgraded
    t_named, named_entry = named()
    assert t_named - upgraded <= detect_s, (t_named - upgraded, named_entry)
    assert any("regime change at" in r for r in named_entry["last_refit_reasons"]), named_entry
    # first seen with a segment's 30 samples since, a change may be dated up to those 6 s early (models/regime.py);
    # the refit that shifts the plan dates it within the 1 s step before the upgrade and the rate window after it
    assert -detect_fill_s(run) - 1.0 <= dated_s(named_entry) <= RATE_WINDOW_S + 2.0, (dated_s(named_entry), named_entry)
    assert -2.0 <= dated_s(entry) <= RATE_WINDOW_S + 2.0, (dated_s(entry), entry)
    # the model it planned with has learned the new cost: within the gate's 10% (its first samples may
    # mix the old cost in over the rate window), then within 5%
    fps = run.median_fps(CHECKOUT, M7I)
    want = run.truth_w(CHECKOUT, M7I, fps)

    def error(models) -> float:
        return models[(CHECKOUT, M7I)].power.power_w(fps) / want - 1
    _, models = next((t, m) for t, m in reversed(run.history[schema]) if t <= t_shift)
    assert abs(error(models)) <= 0.10, f"{error(models):+.1%} at {fps:.1f} fps"
    assert wait_until(lambda: abs(error(run.history[schema][-1][1])) <= 0.05, 45), \
        f"{error(run.history[schema][-1][1]):+.1%} at {fps:.1f} fps"
    print(f"\nKepler {schema}: plan shifted {t_shift - upgraded:.1f} s after the upgrade (limit {limit_s:.0f} s), "
          f"the change named on /plan after {t_named - upgraded:.1f} s (limit {detect_s:.0f} s) and dated "
          f"{dated_s(entry):+.1f} s from it; checkout-cams on spr-amx-tdx/m7i-metal-48xl "
          f"{split(before)} -> {split(plan)}")
    for step in refit_story(rec, upgraded, (CHECKOUT, M7I)):
        print(f"  {step[0]:5.1f} s  {step[1]}: {step[2][:160]}")


# -- (2) an implausible fit never replaces a good model --------------------------------------------

@pytest.mark.parametrize("schema", SCHEMAS)
def test_an_implausible_fit_never_replaces_a_good_model(run, schema):
    upgraded = wait_for(run, "upgraded", UPGRADE_BY_S + 10)
    served = run.served[schema]
    refused = re.compile(rf"refit: {CHECKOUT} on {SPR}: kept-current: .*implausible: power falls as FPS rises")
    assert wait_until(lambda: refused.search(served.log()), max(1.0, upgraded + WINDOW_S + SLACK_S - time.time())), \
        served.log()[-4000:]
    print(f"\nKepler {schema}: {len(refused.findall(served.log()))} implausible fit(s) of checkout-cams on {SPR} "
          f"refused; {run.world.exporter.aborted} scrape(s) abandoned by Prometheus")
    truth = run.world.truth(CHECKOUT, SPR)
    in_use = [m for t, m in run.history[schema] if t <= upgraded][-1][(CHECKOUT, SPR)]
    fps = run.median_fps(CHECKOUT, SPR)
    assert abs(in_use.power.power_w(fps) / truth.model.power.power_w(fps) - 1) <= 0.05      # a good model
    for t, models in run.history[schema]:
        if t > upgraded:
            m = models[(CHECKOUT, SPR)]
            # every model in use stays good: within 5% at the median FPS, and at the range's edges
            # within the gate's own hold-out bound, 10% (a plausible refit accepted there once read
            # 5.5% low at a fifth of capacity, where few samples lie)
            for f, bound in ((0.2 * truth.capacity_fps, 0.10), (fps, 0.05), (truth.capacity_fps, 0.10)):
                assert abs(m.power.power_w(f) / truth.model.power.power_w(f) - 1) <= bound, (t - upgraded, f, m)
    plan = run.recorders[schema].latest()
    assert model_entry(plan, CHECKOUT, SPR)["kind"] == "fitted"
