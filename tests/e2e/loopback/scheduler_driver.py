"""A kube-scheduler-like driver: each Pending pod through the built-in filters, the extender's
`filter` and `prioritize` over a real HTTP socket, the score plugins of the shipped
KubeSchedulerConfiguration, then bound.

Per pod, as `schedule_one.go` does: the built-in filters (NodeUnschedulable; NodeResourcesFit on
CPU and memory requests plus the RuntimeClass's `overhead.podFixed`; the pod's nodeSelector),
then `POST <prefix>/filter` with the ExtenderArgs kube-scheduler sends (`Pod`, and `NodeNames`
with `Nodes` null because the shipped extender is nodeCacheCapable), then, when more than one
node is left, `POST <prefix>/prioritize`; each node's total is the modelled plugins' scores
(`simulations/scheduler_config.ScorePlugins`: NodeResourcesFit and BalancedAllocation, 0..100
times their weights) plus the extender's score x weight x 10 (MaxNodeScore / MaxExtenderPriority).
The best node wins (ties: the first by name). An empty filter answer leaves the pod Pending.
Binding sets `spec.nodeName` (the caller adds the pod to the replay cluster on that node).

The RuntimeClass's `scheduling.nodeSelector` is not applied: the recorded nodes carry no
`katacontainers.io/kata-runtime` label, so the extender's TEE filter is the only TEE check here
(which is what the test wants to see hold).
"""

from __future__ import annotations

import copy
import json
import threading
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.kube_fake import FakeKubeApi
from wattwise.simulations.scheduler_config import ScorePlugins


def cpu_m(text: str) -> int:
    text = str(text)
    return int(text[:-1]) if text.endswith("m") else int(round(float(text) * 1000))


def mem_mib(text: str) -> float:
    text = str(text)
    units = {"Ki": 1 / 1024, "Mi": 1.0, "Gi": 1024.0, "Ti": 1024.0 ** 2}
    for unit, factor in units.items():
        if text.endswith(unit):
            return float(text[:-2]) * factor
    return float(text) / 2 ** 20


@dataclass
class Decision:
    pod: str
    node: str | None
    feasible: list[str]
    extender_failed: dict = field(default_factory=dict)
    scores: dict = field(default_factory=dict)


class SchedulerDriver:
    """Schedules the Pending pods of `api` every `interval_s` through the extender at `url`."""

    def __init__(self, api: FakeKubeApi, url: str, *, weight: int, plugins: ScorePlugins, interval_s: float,
                 bind: Callable[[dict, str], None], node_cache_capable: bool = True):
        self.api = api
        self.url = url.rstrip("/")
        self.weight = weight
        self.plugins = plugins
        self.interval_s = interval_s
        self.bind = bind
        self.node_cache_capable = node_cache_capable
        self.decisions: list[Decision] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="scheduler-driver")

    def start(self) -> SchedulerDriver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.schedule_pending()

    def pending(self) -> list[dict]:
        return [copy.deepcopy(p) for p in self.api.resources["pods"].items
                if not (p.get("spec") or {}).get("nodeName") and (p.get("status") or {}).get("phase") == "Pending"]

    def schedule_pending(self) -> None:
        for pod in self.pending():
            try:
                self.schedule(pod)
            except Exception as e:  # noqa: BLE001 - kept for the test's failure message; the pod retries
                self.errors.append(f"{pod['metadata']['name']}: {type(e).__name__}: {e}")

    # -- one pod ------------------------------------------------------------------------------------

    def _post(self, verb: str, doc: dict):
        req = urllib.request.Request(f"{self.url}/{verb}", json.dumps(doc).encode(),
                                     {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            if resp.status != 200:
                raise RuntimeError(f"{verb}: HTTP {resp.status}")
            return json.load(resp)

    def _overhead(self, pod: dict) -> tuple[int, float]:
        name = (pod.get("spec") or {}).get("runtimeClassName")
        rc = next((r for r in self.api.resources["runtimeclasses"].items if r["metadata"]["name"] == name), None)
        fixed = ((rc or {}).get("overhead") or {}).get("podFixed") or {}
        return cpu_m(fixed.get("cpu", "0")), mem_mib(fixed.get("memory", "0"))

    def requests(self, pod: dict) -> tuple[int, float]:
        c, m = self._overhead(pod)
        for container in pod["spec"]["containers"]:
            req = (container.get("resources") or {}).get("requests") or {}
            c += cpu_m(req.get("cpu", "0"))
            m += mem_mib(req.get("memory", "0"))
        return c, m

    def used(self) -> dict[str, tuple[int, float]]:
        out: dict[str, tuple[int, float]] = {}
        for p in self.api.resources["pods"].items:
            node = (p.get("spec") or {}).get("nodeName")
            if node and (p.get("status") or {}).get("phase") in ("Pending", "Running"):
                c, m = self.requests(p)
                oc, om = out.get(node, (0, 0.0))
                out[node] = (oc + c, om + m)
        return out

    def builtin_filter(self, pod: dict) -> tuple[list[dict], dict[str, tuple[float, float]]]:
        """Nodes passing NodeUnschedulable, NodeResourcesFit and the nodeSelector, with the
        fraction of (cpu, memory) each would have requested after placing the pod."""
        c, m = self.requests(pod)
        used = self.used()
        selector = (pod.get("spec") or {}).get("nodeSelector") or {}
        feasible, fractions = [], {}
        for node in self.api.resources["nodes"].items:
            name = node["metadata"]["name"]
            if (node.get("spec") or {}).get("unschedulable") or any(
                    t.get("effect") == "NoSchedule" for t in (node.get("spec") or {}).get("taints") or ()):
                continue
            labels = node["metadata"].get("labels") or {}
            if any(labels.get(k) != v for k, v in selector.items()):
                continue
            alloc = node["status"]["allocatable"]
            ac, am = cpu_m(alloc["cpu"]), mem_mib(alloc["memory"])
            uc, um = used.get(name, (0, 0.0))
            if uc + c > ac or um + m > am:
                continue
            feasible.append(node)
            fractions[name] = ((uc + c) / ac, (um + m) / am)
        return feasible, fractions

    def plugin_score(self, fc: float, fm: float) -> float:
        """kube-scheduler's NodeResourcesFit and BalancedAllocation scores after placing the pod."""
        p = self.plugins
        score = 0.0
        if p.fit_weight:
            wc, wm = p.fit_cpu_weight, p.fit_memory_weight
            used = (fc * wc + fm * wm) / (wc + wm)
            score += p.fit_weight * int((used if p.fit_strategy == "MostAllocated" else 1 - used) * 100)
        if p.balanced_weight:
            score += p.balanced_weight * int((1 - abs(fc - fm) / 2) * 100)
        return score

    def schedule(self, pod: dict) -> Decision:
        nodes, fractions = self.builtin_filter(pod)
        names = [n["metadata"]["name"] for n in nodes]
        args = {"Pod": pod, "Nodes": None, "NodeNames": names} if self.node_cache_capable else \
            {"Pod": pod, "Nodes": {"items": nodes}, "NodeNames": None}
        decision = Decision(pod["metadata"]["name"], None, [])
        if names:
            got = self._post("filter", args)
            if got.get("Error") or got.get("error"):
                raise RuntimeError(f"filter: {got.get('Error') or got.get('error')}")
            if self.node_cache_capable:
                feasible = list(got.get("NodeNames") or got.get("nodenames") or ())
            else:
                feasible = [n["metadata"]["name"] for n in (got.get("Nodes") or got.get("nodes") or {}).get("items") or ()]
            decision.feasible = feasible
            decision.extender_failed = {**(got.get("FailedNodes") or {}), **(got.get("FailedAndUnresolvableNodes") or {})}
            if len(feasible) == 1:
                decision.node = feasible[0]
            elif feasible:
                args = {**args, "NodeNames": feasible} if self.node_cache_capable else \
                    {**args, "Nodes": {"items": [n for n in nodes if n["metadata"]["name"] in feasible]}}
                extender = {h.get("Host", h.get("host")): int(h.get("Score", h.get("score", 0)))
                            for h in self._post("prioritize", args) or ()}
                totals = {n: self.plugin_score(*fractions[n]) + extender.get(n, 0) * self.weight * 10
                          for n in feasible}
                decision.scores = totals
                decision.node = max(sorted(totals), key=lambda n: totals[n])
        self.decisions.append(decision)
        if decision.node is not None:
            self.bind(pod, decision.node)
        return decision
