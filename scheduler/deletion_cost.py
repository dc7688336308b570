"""Keep `controller.kubernetes.io/pod-deletion-cost` on WattWise's pods as the plan wants it.

On scale-down the ReplicaSet controller removes the pods with the lowest deletion cost first
(after unscheduled, pending and not-ready ones: `models.delete_order`). The core's
`planned_deletion_costs` says what each pod's cost should be: negative on the pods a node holds
beyond what the plan wants there, the plan's count on the rest. This reconciler only applies
it: whenever the plan view or the pods change, it PATCHes (JSON merge patch) each pod of a planned
workload whose annotation differs from the core's value, at most `max_patches_per_s` a second, in
the order the controller would delete them with the new values (`deletion_order`): when PATCHes
are paced, the pods a scale-down removes first are the first to carry it. A failed PATCH (403 without
RBAC `patch` on pods, 404 for a pod just deleted, a timeout) is logged, counted
(`wattwise_extender_deletion_cost_patch_errors_total{code}`) and retried after `retry_s`; it never
stops the extender.

Pods come from the extender's one pod watch (`KubeReplicaCounts`); pods of workloads the plan
does not know are left alone, and nothing is patched while the watch is not current.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Protocol

from wattwise.models.delete_order import PodPhase, ScaleDownPod, deletion_order, planned_deletion_costs
from wattwise.models.rollout import DELETION_COST_ANNOTATION
from wattwise.runtime import PlanSource, PlanView
from wattwise.scheduler.metrics import ExtenderMetrics
from wattwise.scheduler.replica_counts import PodRecord

log = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"


class PodStore(Protocol):
    known: bool

    def pods(self) -> tuple[PodRecord, ...]: ...

    def add_listener(self, fn: Callable[[], None]) -> None: ...


Patch = Callable[[str, str, str], None]   # (namespace, name, value); raises on failure


def kube_patcher(api_client, timeout_s: float = 10.0) -> Patch:
    """PATCH the annotation with the kubernetes client: a JSON merge patch on the pod."""
    from kubernetes import client

    api = client.CoreV1Api(api_client)

    def patch(namespace: str, name: str, value: str) -> None:
        resp = api.patch_namespaced_pod(name, namespace, {"metadata": {"annotations": {DELETION_COST_ANNOTATION: value}}},
                                        _content_type=MERGE_PATCH, _preload_content=False,
                                        _request_timeout=(5, timeout_s))
        resp.release_conn()

    return patch


def wanted_costs(view: PlanView, pods: Iterable[PodRecord]) -> list[tuple[PodRecord, str]]:
    """Each pod of a planned workload with the annotation value the core gives it (in the plan of
    the workload's own objective), per workload in the order the ReplicaSet controller would delete
    the pods with those values."""
    by_workload: dict[str, list[PodRecord]] = {}
    for p in pods:
        if p.workload in view.plan.workloads:
            by_workload.setdefault(p.workload, []).append(p)
    out = []
    for key, records in by_workload.items():
        records.sort(key=lambda p: (p.namespace, p.name))     # pods alike: the same ones chosen every pass
        planned = view.workload_plan(key)
        alike = [ScaleDownPod(p.node, _phase(p.phase), p.ready) for p in records]
        costs = planned_deletion_costs(alike, planned.by_node)
        order = deletion_order([replace(a, deletion_cost=c) for a, c in zip(alike, costs)])
        out.extend((records[i], str(costs[i])) for i in order)
    return out


def _phase(text: str) -> PodPhase:
    try:
        return PodPhase(text)
    except ValueError:
        return PodPhase.PENDING   # the controller ranks a phase it does not order first, as Pending


@dataclass(frozen=True)
class Pass:
    """What one reconcile pass did."""

    patched: int = 0
    failed: int = 0
    unchanged: int = 0
    skipped: str = ""        # why nothing was looked at (no plan yet, pods not current)


class DeletionCostReconciler:
    def __init__(self, source: PlanSource, pods: PodStore, patch: Patch, metrics: ExtenderMetrics | None = None,
                 max_patches_per_s: float = 5.0, check_s: float = 2.0, retry_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], object] | None = None):
        """`clock`/`sleep`: seconds, injectable (default: monotonic time, and a wait that `stop()` cuts short)."""
        if max_patches_per_s <= 0:
            raise ValueError(f"max_patches_per_s must be > 0, got {max_patches_per_s!r}")
        self._source = source
        self._pods = pods
        self._patch = patch
        self.metrics = metrics or ExtenderMetrics()
        self._spacing_s = 1.0 / max_patches_per_s
        self._check_s, self._retry_s = check_s, retry_s
        self._clock = clock
        self._sleep = sleep
        self._next_patch_s = float("-inf")
        self._sent: dict[tuple[str, str], tuple[str, str]] = {}   # pod -> (value, resourceVersion when sent)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error_logged = ""
        pods.add_listener(self._wake.set)

    # -- one pass --------------------------------------------------------------------------------

    def reconcile_once(self) -> Pass:
        try:
            view = self._source.current()
        except Exception as e:  # noqa: BLE001 - e.g. the scaler's NotReady before its first plan
            return Pass(skipped=f"no plan yet ({e})")
        if not getattr(self._pods, "known", True):
            return Pass(skipped="the pod watch is not current; not patching from stale pods")
        wanted = wanted_costs(view, self._pods.pods())
        present = {(p.namespace, p.name) for p, _ in wanted}
        for pod in [k for k in self._sent if k not in present]:
            del self._sent[pod]
        patched = failed = unchanged = 0
        first_error = ""
        for pod, value in wanted:
            key = (pod.namespace, pod.name)
            if pod.deletion_cost == value or self._sent.get(key) == (value, pod.resource_version):
                unchanged += 1      # set already, or sent and the watch has not shown it back yet
                continue
            if self._stop.is_set():
                break
            self._pace()
            try:
                self._patch(pod.namespace, pod.name, value)
            except Exception as e:  # noqa: BLE001 - counted and logged; retried on the next pass
                failed += 1
                code = str(getattr(e, "status", None) or "error")
                self.metrics.deletion_cost_errors.labels(code).inc()
                log.debug("PATCH %s/%s %s=%s failed: %s", pod.namespace, pod.name, DELETION_COST_ANNOTATION,
                          value, e)
                first_error = first_error or f"{pod.namespace}/{pod.name}: {_describe(e)}"
                continue
            patched += 1
            self._sent[key] = (value, pod.resource_version)
            self.metrics.deletion_cost_patches.inc()
            log.debug("PATCHed %s/%s on %s: %s=%s", pod.namespace, pod.name, pod.node, DELETION_COST_ANNOTATION,
                      value)
        self._report(patched, failed, first_error)
        return Pass(patched, failed, unchanged)

    def _pace(self) -> None:
        """At most one PATCH per `spacing_s` seconds of the clock."""
        wait_s = self._next_patch_s - self._clock()
        if wait_s > 0:
            (self._sleep or self._stop.wait)(wait_s)
        self._next_patch_s = max(self._clock(), self._next_patch_s) + self._spacing_s

    def _report(self, patched: int, failed: int, first_error: str) -> None:
        if patched:
            log.info("pod-deletion-cost: %d pod(s) updated to the plan", patched)
        if failed:
            if first_error != self._error_logged:
                log.warning("pod-deletion-cost: %d PATCH(es) failed, first %s; retrying in %.0f s. A 403 means "
                            "the ServiceAccount lacks `patch` on pods (deploy/base/rbac.yaml leaves it out); "
                            "grant it or drop --set-deletion-cost", failed, first_error, self._retry_s)
                self._error_logged = first_error
        elif self._error_logged:
            log.info("pod-deletion-cost: PATCHes succeed again")
            self._error_logged = ""

    # -- running ---------------------------------------------------------------------------------

    def start(self) -> "DeletionCostReconciler":
        self._thread = threading.Thread(target=self._loop, name="wattwise-deletion-cost", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _loop(self) -> None:
        last_view = None
        retry_at = None
        while not self._stop.is_set():
            try:
                view = self._source.current()
            except Exception:  # noqa: BLE001 - no plan yet; checked again shortly
                view = None
            woken = self._wake.is_set()
            due = retry_at is not None and self._clock() >= retry_at
            if view is not None and (woken or due or view is not last_view):
                self._wake.clear()
                try:
                    result = self.reconcile_once()
                except Exception:  # noqa: BLE001 - the loop must survive; reported
                    log.exception("pod-deletion-cost pass failed; trying again in %.0f s", self._retry_s)
                    result = Pass(failed=1)
                if not result.skipped:
                    last_view = view
                retry_at = self._clock() + self._retry_s if (result.failed or result.skipped) else None
            self._wake.wait(self._check_s)


def _describe(e: Exception) -> str:
    status, reason = getattr(e, "status", None), getattr(e, "reason", None)
    return f"HTTP {status} {reason}" if status else f"{type(e).__name__}: {e}"
