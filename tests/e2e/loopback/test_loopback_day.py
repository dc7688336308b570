"""The whole loop on loopback over one accelerated day (issue 15).

Real: Prometheus (scraping a replay exporter that writes Kepler 0.10 power, kube-state-metrics
and the pipeline's `infer_fps`/`drop_fps` from the simulator's physics), `wattwise serve` started
with the arguments the quickstart overlay renders (only addresses, ports, file paths and serve's
clock-based settings changed: see `serve_args`), a KEDA-like driver calling
GetMetricSpec and GetMetrics over a gRPC channel and applying HPA semantics, and a
kube-scheduler-like driver posting filter and prioritize over HTTP with the weight and score
plugins of the shipped second-scheduler KubeSchedulerConfiguration. Only the Kubernetes API is
faked (tests/kube_fake.py, at our own port).

"A day": 24 h of the bundled demand trace from `day.DEMAND_START` (2024-11-24: quiet until 16:00,
an evening peak) at `day.SPEED` (288x), 300 s of wall time after a 12 s warm-up (see
tests/e2e/loopback/day.py for every interval on that scale). Over it:
- SLA attainment (frames delivered / frames offered, both integrated by the replay) >= 99.9%;
- no confidential pod bound to a node without its TEE (checked at every bind), and a TDX pod
  that only a non-TDX node has room for stays Pending;
- the cluster's energy (every node's power integrated by the replay) within 10% of what
  `wattwise simulate --policies wattwise --days 1` predicts for the same nodes, pairs and demand
  (a scenario written from the replayed world), compared as mean power.

On the accelerated clock serve runs with its clock-based settings scaled (`day.serve_flags`:
`--scale-down-window`, `--replan-min-interval`, `--refresh-s`), and Prometheus reads the inference
pods from one target (`day.APP_SCRAPE_S`: a target per pod reaches Prometheus's scrapers up to 5
wall s after the pod starts). Measured at 288x: SLA 0.99973 (what is lost: a few simulated
minutes after each step of the trace, until the next pod runs), energy ratio 0.9988, 24 pods
created in the day; at 576x (150 s) SLA was 0.99922 to 0.99962, too close to 99.9% for CI. With serve's wall-clock defaults SLA was 0.93 to 0.985; with the
scaled flags but a target per pod, 0.958 and 0.967 (each pod started on a ramp left the demand
serve read for longer than the 5-minute window: the plan fell back, the HPA removed pods, drops
brought it back up).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import yaml

from tests.deploy_render import DEPLOY, render, wattwise_containers
from tests.e2e.loopback import day
from tests.e2e.loopback.keda_driver import KedaDriver
from tests.e2e.loopback.scheduler_driver import SchedulerDriver
from tests.e2e.replay_exporter import ReplayPod
from tests.kube_fake import wait_until
from tests.live.serve_proc import serve, write_kubeconfig
from tests.prometheus_fixture import INSTALL_HINT, missing_binaries
from wattwise.simulations.scheduler_config import load_scheduler_config

# the day runs in the module fixture: its wall time is 86,400 s / day.SPEED plus set-up
pytestmark = [pytest.mark.slow, pytest.mark.timeout(86_400 / day.SPEED + 240)]

# the second scheduler (the recommended set-up, and what `wattwise simulate` models by default)
SCHEDULER_CONFIG = DEPLOY / "examples" / "second-scheduler" / "kube-scheduler-config.second-scheduler.yaml"
KEDA_POLL_S = 30.0 / day.SPEED
# the HPA's scale-down stabilisation as deploy/examples' ScaledObjects set it (0: WattWise holds
# the peak itself over --scale-down-window), on the accelerated clock
HPA_STABILISATION_S = float(yaml.safe_load((DEPLOY / "examples" / "scaledobject-external.yaml").read_text())
                            ["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
                            ["stabilizationWindowSeconds"]) / day.SPEED
SCHEDULE_EVERY_S = 0.05
INITIAL = {"checkout-cams": 2, "parking-lpr": 1}
WARMUP_S = 12.0          # wall seconds before the day starts: serve's first plans from the first scrapes


def serve_args(tmp: Path, kubeconfig: Path, prometheus_url: str) -> list[str]:
    """The quickstart Deployment's arguments, with what must be local substituted: the API
    server (a kubeconfig for the fake, not the in-cluster service account), Prometheus, the
    loopback host, free ports, the mounted files as files here; plus serve's clock-based settings
    on the accelerated clock (`day.serve_flags`: the refresh, the scale-down window and the
    re-plan interval)."""
    objects = render("overlays/quickstart")
    args = wattwise_containers(objects)["Deployment/wattwise:wattwise"]
    zones = next(o["data"]["grid-zones.yaml"] for o in objects
                 if o.get("kind") == "ConfigMap" and "grid-zones.yaml" in (o.get("data") or {}))
    (tmp / "grid-zones.yaml").write_text(zones)
    (tmp / "models").mkdir(exist_ok=True)
    local = {"--in-cluster": f"--kubeconfig={kubeconfig}", "--prometheus": f"--prometheus={prometheus_url}",
             "--host": "--host=127.0.0.1", "--grpc-port": "--grpc-port=0", "--health-port": "--health-port=0",
             "--http-port": "--http-port=0", "--metrics-port": "--metrics-port=0",
             "--extender-health-port": "--extender-health-port=0", "--models": f"--models={tmp / 'models'}",
             "--grid-zone-map": f"--grid-zone-map={tmp / 'grid-zones.yaml'}"}
    out = [local.get(a.split("=", 1)[0], a) for a in args]
    return out + day.serve_flags()


def has_tee(node: dict) -> bool:
    return (node["metadata"].get("labels") or {}).get(day.TDX_LABEL) == "true"


class Loop:
    """Everything of one run, and what the test reads afterwards."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.world = day.build(tmp / "world", INITIAL)
        self.streams = day.demand_streams()
        self.violations: list[str] = []
        self.binds: list[tuple[str, str]] = []
        self.starting: list[tuple[float, str]] = []     # (due wall time, pod name)
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.day_started = 0.0
        self.timeline: list[tuple[float, dict]] = []    # (simulated s, {workload: (offered fps, served fps, pods)})
        # (simulated s, plan_version, {workload: (replicas, forecast added fps, demand fps planned for)})
        self.plans: list[tuple[float, int, dict]] = []
        self.served = None
        self.pods_created = 0                              # during the day

    # -- what the controllers do ----------------------------------------------------------------
    def create_pod(self, owner: dict, kind: str, ordinal: int | None) -> dict:
        short = owner["metadata"]["name"]
        if self.day_started:
            self.pods_created += 1
        name = f"{short}-{ordinal}" if ordinal is not None else \
            f"{short}-{day.recorded_world.RS_HASH.get(short, 'x')}-{uuid.uuid4().hex[:5]}"
        return day.pending_pod(self.world, owner, kind, name, str(uuid.uuid4()), time.time())

    def delete_pod(self, namespace: str, name: str) -> None:
        c = self.world.cluster
        with c.lock:
            if (namespace, name) in c.pods:
                c.remove_pod(namespace, name)
                return
        obj = next((p for p in self.world.api.resources["pods"].items
                    if (p["metadata"]["namespace"], p["metadata"]["name"]) == (namespace, name)), None)
        if obj is not None:
            self.world.api.emit("pods", "DELETED", obj)

    def bind(self, pod: dict, node: str) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        confidential = bool(spec.get("runtimeClassName"))
        if confidential and not has_tee(self.world.nodes[node]):
            self.violations.append(f"{meta['name']} ({spec['runtimeClassName']}) bound to {node}")
        short = meta["labels"]["app"]
        owner = meta["ownerReferences"][0]
        self.world.cluster.add_pod(ReplayPod(
            meta["namespace"], meta["name"], node, meta["uid"], ip=f"10.245.{len(self.binds) % 250}.{len(self.binds) // 250 + 2}",
            labels=dict(meta["labels"]), owner_kind=owner["kind"], owner_name=owner["name"], cpu_m=4000,
            workload=f"{day.NS}/{short}", phase="Pending"))
        with self.lock:
            self.binds.append((meta["name"], node))
            self.starting.append((time.time() + self.world.startup_s(node, confidential) / day.SPEED, meta["name"]))

    def sample_plan(self) -> None:
        """serve's plan now (GET /plan): replicas and what pre-warming added, per workload."""
        try:
            doc = self.served.get("/plan")
        except Exception as e:  # noqa: BLE001 - a missed sample only thins the printout
            self.plans.append((self.sim_s(), -1, {"error": str(e)}))
            return
        self.plans.append((self.sim_s(), doc["plan_version"], {
            w["key"]: (w["replicas"], (w.get("forecast") or {}).get("added_fps", 0.0), w["demand_fps"])
            for w in doc["workloads"]}))

    # -- the day ---------------------------------------------------------------------------------
    def sim_s(self) -> float:
        return (time.time() - self.day_started) * day.SPEED if self.day_started else 0.0

    def direct(self) -> None:
        """Demand from the trace at the simulated time; started pods become Running."""
        c = self.world.cluster
        while not self.stop_event.wait(0.05):
            for w, fps in day.offered_fps(self.streams, min(self.sim_s(), day.DAY_S - 1)).items():
                if c.demand_fps.get(w) != fps:
                    c.set_demand(w, fps)
            now = time.time()
            if self.day_started and (not self.timeline or self.sim_s() - self.timeline[-1][0] >= 600):
                with c.lock:
                    c.advance()
                    self.timeline.append((self.sim_s(), {
                        w: (round(fps), round(sum(p.delivered_fps for p in c.pods.values() if p.workload == w)),
                            sum(1 for p in c.pods.values() if p.workload == w and p.running))
                        for w, fps in c.demand_fps.items()}))
                self.sample_plan()
            with self.lock:
                due = [n for t, n in self.starting if t <= now]
                self.starting = [(t, n) for t, n in self.starting if t > now]
            for name in due:
                with c.lock:
                    if (day.NS, name) in c.pods:
                        c.set_phase(day.NS, name, "Running")


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    if missing_binaries():
        pytest.skip(f"{', '.join(missing_binaries())} not found: {INSTALL_HINT}")
    tmp = tmp_path_factory.mktemp("loopback")
    run = Loop(tmp)
    served = keda = sched = None
    director = threading.Thread(target=run.direct, daemon=True, name="loopback-director")
    try:
        kubeconfig = write_kubeconfig(tmp / "kubeconfig", run.world.api.url)
        served = run.served = serve(tmp, serve_args(tmp, kubeconfig, run.world.prometheus.url))
        config = load_scheduler_config(SCHEDULER_CONFIG)
        sched = SchedulerDriver(run.world.api, served.url(""), weight=config.extender_weight, plugins=config.plugins,
                                interval_s=SCHEDULE_EVERY_S, bind=run.bind).start()
        keda = KedaDriver(run.world.api, f"127.0.0.1:{served.grpc_port}", interval_s=KEDA_POLL_S,
                          stabilisation_s=HPA_STABILISATION_S, create_pod=run.create_pod,
                          delete_pod=run.delete_pod).start()
        director.start()
        # the first offered load (the day's first hour) while serve plans from its first scrapes
        assert wait_until(lambda: run.world.cluster.demand_fps and keda.answers > 0, 90), (keda.errors, served.log()[-3000:])
        time.sleep(WARMUP_S)
        c = run.world.cluster
        with c.lock:
            c.advance()
            run.world.cluster.offered_frames.clear()
            run.world.cluster.delivered_frames.clear()
            run.energy_start_j, run.wall_start_s = c.energy_j, c.t
            run.day_started = time.time()
        time.sleep(day.DAY_S / day.SPEED)
        with c.lock:
            c.advance()
            run.energy_j, run.wall_s = c.energy_j - run.energy_start_j, c.t - run.wall_start_s
            run.offered = dict(c.offered_frames)
            run.delivered = dict(c.delivered_frames)
        keda.stop()
        run.keda = keda
        run.tdx_probe = tdx_probe(run, sched)
        run.sched = sched
        yield run
    finally:
        run.stop_event.set()
        for d in (keda, sched):
            if d is not None:
                d.stop()
        code = served.stop() if served is not None else 0
        run.world.stop()
    assert code == 0, served.log()[-3000:]


def tdx_probe(run: Loop, sched: SchedulerDriver):
    """A TDX pod asking for more CPU than any TDX node has free, which milan-snp-1 (SEV-SNP,
    no TDX) still has room for: the built-in filters leave only non-TDX nodes, the extender must
    refuse them all, and the pod stays Pending."""
    owner = next(d for d in run.world.api.resources["deployments"].items if d["metadata"]["name"] == "checkout-cams")
    pod = day.pending_pod(run.world, owner, "Deployment", "checkout-cams-probe-tdx00", str(uuid.uuid4()), time.time())
    pod["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "112", "memory": "8Gi"},
                                                 "limits": {"cpu": "112", "memory": "8Gi"}}
    pod["metadata"]["labels"] = {"app": "tdx-probe"}     # no controller counts it
    run.world.api.emit("pods", "ADDED", pod)
    before = len(sched.decisions)
    assert wait_until(lambda: any(d.pod == pod["metadata"]["name"] for d in sched.decisions[before:]), 10)
    decision = next(d for d in sched.decisions[before:] if d.pod == pod["metadata"]["name"])
    still = next(p for p in run.world.api.resources["pods"].items if p["metadata"]["name"] == pod["metadata"]["name"])
    return decision, sched.builtin_filter(pod)[0], still


def test_sla_attainment_over_the_day_is_at_least_99_9_percent(loop):
    offered, delivered = sum(loop.offered.values()), sum(loop.delivered.values())
    per = {w: f"{loop.delivered[w] / loop.offered[w]:.5f}" for w in loop.offered}
    refreshes = [v for _, v, _ in loop.plans if v >= 0]
    print(f"\nSLA attainment {delivered / offered:.5f} over {loop.wall_s:.0f} wall s ({per}); "
          f"{len(loop.keda.history)} scalings, {loop.keda.answers} GetMetrics answers, {len(loop.binds)} binds, "
          f"{loop.pods_created} pods created in the day; "
          f"{(refreshes[-1] - refreshes[0]) / loop.wall_s if len(refreshes) > 1 else 0:.1f} plan refreshes per wall s")
    plans = dict((round(t / 600), p) for t, _, p in loop.plans)
    for i, (t, row) in enumerate(loop.timeline):
        if t < 15.5 * 3600 and i % 6:        # the quiet hours thinly, the evening at every sample
            continue
        plan = plans.get(round(t / 600), {})
        print(f"  {t / 3600:5.2f} h  " + "  ".join(
            f"{w.split('/')[1]} offered {o} served {d} fps on {n} pods (plan {plan.get(w, ('?', 0, 0))[0]} for "
            f"{plan.get(w, ('?', 0, 0))[2]:.0f} fps, pre-warm +{plan.get(w, ('?', 0, 0))[1]:.0f})"
            for w, (o, d, n) in row.items()))
    assert delivered / offered >= 0.999, per


def test_keda_gets_an_answer_on_every_poll_of_the_day(loop):
    # serve answers UNAVAILABLE only while it has no trustworthy demand yet (its first scrapes)
    late = [e for t, e in loop.keda.timed_errors if t > loop.day_started]
    assert loop.keda.answers > 1000 and not late, late[:5]


def test_no_confidential_pod_runs_without_its_tee(loop):
    assert loop.binds, "no pod was ever bound"
    placed: dict[str, int] = {}
    for pod, node in loop.binds:
        key = f"{pod.rsplit('-', 2)[0] if pod.startswith('checkout') else 'parking-lpr'}@{node}"
        placed[key] = placed.get(key, 0) + 1
    print(f"\nbinds: {placed}")
    assert loop.violations == []
    assert not loop.sched.errors, loop.sched.errors[:5]
    decision, builtin, pod = loop.tdx_probe
    names = {n["metadata"]["name"] for n in builtin}
    assert names and not any(has_tee(loop.world.nodes[n]) for n in names), names   # only non-TDX nodes had room
    assert decision.node is None and decision.feasible == [], decision
    assert not pod["spec"].get("nodeName") and pod["status"]["phase"] == "Pending"


def test_energy_is_within_10_percent_of_what_simulate_predicts(loop):
    scenario = day.write_scenario(loop.world, loop.tmp / "scenario")
    out = loop.tmp / "sim"
    done = subprocess.run([sys.executable, "-m", "wattwise", "simulate", "--scenario", str(scenario), "--days", "1",
                           "--demand-start", day.DEMAND_START, "--policies", "wattwise",
                           "--scheduler-config", str(SCHEDULER_CONFIG), "--out", str(out), "--workers", "1"],
                          capture_output=True, text=True, timeout=240, cwd=day.REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    sim_w = summary["policies"]["wattwise"]["energy_kwh"] * 3.6e6 / day.DAY_S
    live_w = loop.energy_j / loop.wall_s
    print(f"\nmean power: loopback {live_w:.1f} W, simulate {sim_w:.1f} W, ratio {live_w / sim_w:.4f}")
    assert math.isfinite(sim_w) and abs(live_w / sim_w - 1) <= 0.10
