"""Kepler faults under `wattwise serve` refitting its energy models every 4 s over the last 20 s
(`--refit-every 4s --refit-window 20s`) from a real Prometheus scraping, every second, the replay
exporter of `tests/e2e/` (Kepler 0.10 label sets, the pipeline's FPS gauges, kube-state-metrics;
its world: the recorded cluster, three workloads, truth = the product's priors, checkout-cams on
m7i-metal-48xl 1.15x). Kepler's counters:

- reset (a Kepler restart on milan-snp-1: its targets fail for 2 s, then every counter starts
  from zero);
- spike to kilowatts (3 kW more, for 4 s, on each parking-lpr pod of icx-sgx-1, in pod and node
  counters alike, as Kepler's reported glitches show);
- go stale (Kepler on spr-tdx-2 stuck for 10 s: its counters frozen while checkout-cams' replicas
  there keep serving frames).

Each fault is first shown to be in what Prometheus answers (a refit reads it). Then: refits run
through it (each `inputs.refit` in `GET /plan` ok, its window holding the fault), no model in use
(the models file, every version, and `/plan`'s) moves more than 10% from the truth, every plan
still covers checkout-cams' demand (48 streams, fixed) at capacities no higher than the truth's,
the KEDA answer never falls below the replicas that demand needs at the truth's capacities,
`/filter` never offers the confidential pod a node without TDX, nothing crashes.
`degraded` stays false: the plan's inputs (the models in use) stay trustworthy, the fault never
reaches them; what each refit did is `/plan`'s `inputs.refit` and per model `last_refit`."""

from __future__ import annotations

import json
import math
import threading
import time
import urllib.parse
import urllib.request

import pytest

from tests.e2e.world import CHECKOUT, ICX, M7I, MILAN, NS, PARKING, SPR, build
from tests.faults.harness import DEADLINE_S, KEY, Probe, Rig, checkout_trigger, summary
from tests.kube_fake import recorded_list, wait_until
from tests.live.serve_proc import serve, write_kubeconfig
from tests.prometheus_fixture import INSTALL_HINT, free_port, missing_binaries
from wattwise.models import persistence

pytestmark = pytest.mark.slow

EVERY_S, WINDOW_S = 5, 60
WARM_UP_S = 150          # until refits have a full window and checkout-cams on m7i-metal-48xl is fitted
TOLERANCE = 0.10
PAIRS = ((CHECKOUT, SPR), (CHECKOUT, M7I), (PARKING, ICX), (PARKING, MILAN))


class KeplerFaults:
    """Faults in the replay's Kepler counters, applied as the replay integrates energy: `spike_w`
    extra watts per pod of a node (and its node counter), or a node's counters `frozen`."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.spike_w: dict[str, float] = {}
        self.frozen: set[str] = set()
        original = cluster._integrate

        def integrate(t: float) -> None:
            dt = max(0.0, t - cluster.t)
            held = {n: (cluster.nodes[n].kepler_j, cluster.nodes[n].kepler_idle_j,
                        {p.key: (p.kepler_j, p.kepler_idle_j) for p in cluster.pods.values() if p.node == n})
                    for n in self.frozen}
            original(t)
            for node, extra_w in self.spike_w.items():
                for p in cluster.pods.values():
                    if p.node == node and p.running and p.inference:
                        p.kepler_j += extra_w * dt
                        cluster.nodes[node].kepler_j += extra_w * dt
            for node, (j, idle_j, pods) in held.items():
                cluster.nodes[node].kepler_j, cluster.nodes[node].kepler_idle_j = j, idle_j
                for key, (pj, pidle) in pods.items():
                    if key in cluster.pods:
                        cluster.pods[key].kepler_j, cluster.pods[key].kepler_idle_j = pj, pidle

        cluster._integrate = integrate

    def set(self, *, spike: tuple[str, float] | None = None, freeze: str | None = None, clear: bool = False) -> None:
        with self.cluster.lock:
            self.cluster.advance()
            if clear:
                self.spike_w.clear()
                self.frozen.clear()
            if spike:
                self.spike_w[spike[0]] = spike[1]
            if freeze:
                self.frozen.add(freeze)


class Models:
    """Every version of the models file the refitter writes (polled)."""

    def __init__(self, path):
        self.path = path
        self.versions: list[tuple[float, dict]] = []
        self._stamp = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            try:
                stamp = self.path.stat().st_mtime_ns
                if stamp != self._stamp:
                    models, _ = persistence.load(self.path)
                    self._stamp = stamp
                    self.versions.append((time.time(), {(m.workload, m.node_class): m for m in models}))
            except (FileNotFoundError, ValueError):
                pass

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.fixture(scope="module")
def kepler(tmp_path_factory):
    """One world and one `wattwise serve` for the three faults (each on a node of its own): a
    refit needs a full window (60 s) of history before its gate judges a fit on quality."""
    if missing_binaries():
        pytest.fail(f"prometheus not found: {INSTALL_HINT}", pytrace=False)
    tmp_path = tmp_path_factory.mktemp("kepler")
    world = build(tmp_path / "world", schemas=("0.10",))
    faults = KeplerFaults(world.cluster)
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    metrics_port = free_port()
    served = None
    try:
        served = serve(tmp_path, [
            "serve", "--scaler", "--extender", "--kubeconfig", str(write_kubeconfig(tmp_path / "kubeconfig",
                                                                                   world.api.url)),
            "--host", "127.0.0.1", "--grpc-port", "0", "--health-port", "0", "--http-port", "0", "--plan-inline",
            "--refresh-s", "1", "--grace-s", "2", "--metrics-port", str(metrics_port),
            "--prometheus", world.prometheus.url, "--models", str(models_dir), "--refit-every", f"{EVERY_S}s",
            "--refit-window", f"{WINDOW_S}s", "--scrape-interval", "1s", "--kepler-schema", "0.10"])
        rig = Rig(world.api, served, metrics_port, tmp_path, dict(checkout_trigger({"scaledobjects":
                                                                                    recorded_list("scaledobjects")})))
        models = Models(models_dir / "energy-models.json")

        def warm() -> bool:
            doc = rig.plan()
            return any((m["workload"], m["node_class"]) == (CHECKOUT, M7I) and m["kind"] == "fitted"
                       for m in doc["inputs"]["models"]) and not doc["degraded"]
        assert wait_until(warm, WARM_UP_S), (rig.plan()["inputs"]["models"], served.log()[-4000:])
        yield world, rig, faults, models
        models.stop()
    finally:
        code = served.stop() if served is not None else 0
        world.stop()
    assert code == 0, served.log()[-4000:]


def _query(world, promql: str, at_s: float) -> list[dict]:
    q = urllib.parse.urlencode({"query": promql, "time": f"{at_s:.3f}"})
    with urllib.request.urlopen(f"{world.prometheus.url}/api/v1/query?{q}", timeout=10) as r:
        return json.load(r)["data"]["result"]


def _refit(rig) -> dict | None:
    return rig.plan()["inputs"].get("refit")


def _refits_through(rig, seen: list[float], fault_s: float, end_s: float, n: int = 2) -> bool:
    """`n` refits finished since the fault ended (`seen`: their finish times so far), the last
    one's window holding the fault."""
    r = _refit(rig)
    if r and r["ok"] and r["finished_s"] > end_s and r["finished_s"] not in seen:
        seen.append(r["finished_s"])
    return len(seen) >= n and r["window"]["start_s"] <= fault_s


def _near_truth(world, model, pair) -> float:
    """The model's power at the pair's median FPS, relative to the truth's."""
    truth = world.truth(*pair)
    fps = 0.675 * truth.capacity_fps
    return model.power.power_w(fps) / (truth.power_factor * truth.model.power.power_w(fps)) - 1


def _covers_demand(doc: dict) -> bool:
    w = next(w for w in doc["workloads"] if w["key"] == CHECKOUT)
    capacity = {m["node_class"]: m["capacity_fps"] for m in doc["inputs"]["models"] if m["workload"] == CHECKOUT}
    return w["unmet_fps"] == 0 and sum(p["replicas"] * capacity[p["node_class"]] for p in w["placements"]) \
        >= w["demand_fps"] > 0


def _capacities_at_most_truth(world, doc: dict) -> bool:
    """Every capacity checkout-cams' plan counts on is at most what the pair really serves: a Kepler
    fault moves power readings, never what a replica is believed to deliver."""
    return all(m["capacity_fps"] <= world.truth(CHECKOUT, m["node_class"]).capacity_fps + 1e-6
               for m in doc["inputs"]["models"] if m["workload"] == CHECKOUT
               and (CHECKOUT, m["node_class"]) in world.cluster.truths)


def _replicas_the_demand_needs(world, doc: dict | None) -> int:
    """The fewest replicas that serve checkout-cams' demand at the truth's capacities (each on the
    fastest class its plan places on): the floor of every KEDA answer while a fault is on. Not
    the count before the fault: the plan moves by a replica as drops lower a capacity and expire
    (`models/capacity_correction.py`) and as refits fit, none of which the fault causes."""
    w = next(w for w in doc["workloads"] if w["key"] == KEY) if doc else None
    if not w or not w["placements"]:
        return 1
    fastest = max(world.truth(CHECKOUT, p["node_class"]).capacity_fps for p in w["placements"])
    return math.ceil(w["demand_fps"] / fastest - 1e-9)


def _through_fault(world, rig, faults, models, set_fault, in_prometheus, fault_s: float) -> None:
    """Steady first (a refit done, the plan not degraded), then the fault for `fault_s`, then
    refits through it; the checks of the module notes."""
    assert wait_until(lambda: (_refit(rig) or {}).get("ok") and not rig.plan()["degraded"], DEADLINE_S), rig.log()
    probe = Probe(rig, every_s=0.5).start()
    refits: list[float] = []
    try:
        start = time.time()
        set_fault()
        time.sleep(fault_s)                     # how long the fault lasts (a parameter, not a wait for an outcome)
        end = time.time()
        faults.set(clear=True)
        assert in_prometheus(start, end), "the fault never reached Prometheus"
        assert wait_until(lambda: _refits_through(rig, refits, start, end), DEADLINE_S), (_refit(rig), rig.log())
        probe.stop()
        during = probe.check(start)
        for t in during:
            assert t.keda >= _replicas_the_demand_needs(world, t.plan), (t.keda, summary(t.plan))
        assert all(_covers_demand(t.plan) and _capacities_at_most_truth(world, t.plan) for t in during if t.plan)
        assert all(not t.plan["degraded"] for t in during if t.plan), [t.plan["degraded_reasons"] for t in during
                                                                      if t.plan and t.plan["degraded"]][:3]
        for written_s, version in models.versions:
            for pair in PAIRS:
                if pair in version:
                    err = _near_truth(world, version[pair], pair)
                    assert abs(err) <= TOLERANCE, (f"{pair} written {written_s - start:+.0f} s from the fault: "
                                                   f"{err:+.1%} from the truth")
        doc = rig.plan()
        for m in doc["inputs"]["models"]:
            if (m["workload"], m["node_class"]) in PAIRS:
                assert m.get("last_refit"), m                       # every refit's verdict is shown
        assert rig.alive()
    finally:
        probe.stop()


def test_kepler_counters_resetting(kepler):
    world, rig, faults, models = kepler

    def restart():
        world.cluster.restart_kepler("milan-snp-1", down_s=2.0)

    def in_prometheus(start, end):
        return wait_until(lambda: any(float(r["value"][1]) > 0 for r in _query(
            world, 'resets(kepler_node_cpu_joules_total{node_name="milan-snp-1",zone="package"}[30s])',
            time.time())), 10)
    _through_fault(world, rig, faults, models, restart, in_prometheus, 4.0)
    assert "Kepler counter reset event(s)" in rig.served.log()


def test_kepler_spiking_to_kilowatts(kepler):
    world, rig, faults, models = kepler

    def spike():
        faults.set(spike=("icx-sgx-1", 3000.0))

    def in_prometheus(start, end):
        at = end - 1
        rates = _query(world, f'max(rate(kepler_pod_cpu_joules_total{{pod_namespace="{NS}",zone="package",'
                              'node_name="icx-sgx-1"}[3s]))', at)
        return bool(rates) and float(rates[0]["value"][1]) > 1000.0          # kilowatts per pod
    _through_fault(world, rig, faults, models, spike, in_prometheus, 4.0)


def test_kepler_going_stale(kepler):
    world, rig, faults, models = kepler

    def freeze():
        faults.set(freeze="spr-tdx-2")

    def in_prometheus(start, end):
        at = end - 1
        power = _query(world, 'max(rate(kepler_pod_cpu_joules_total{node_name="spr-tdx-2",zone="package"}[5s]))', at)
        fps = _query(world, f'sum(infer_fps{{namespace="{NS}"}} * on(namespace, pod) group_left() '
                            'kube_pod_info{node="spr-tdx-2"})', at)
        # Kepler says 0 W while the replicas there serve frames
        return bool(power and fps) and float(power[0]["value"][1]) == 0.0 and float(fps[0]["value"][1]) > 0
    _through_fault(world, rig, faults, models, freeze, in_prometheus, 10.0)
