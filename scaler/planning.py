"""Where the refresher's `plan()` calls run: inline, or in one long-lived worker process.

Re-planning 1,000 workloads takes seconds of CPU. On the server's own process that CPU competes
with the gRPC handlers for the GIL and stretches the answers' tail latency, so in service
(`wattwise serve --scaler`) the refresher hands its snapshots to a `ProcessPlanner`: one worker
process (a `ProcessPoolExecutor` with one worker, started with 'forkserver', or 'spawn' where
that is missing; never 'fork', the server has gRPC threads). Only plain data crosses: the
snapshots in, (plan, next policy state) pairs out. `InlinePlanner` calls the planner on the
caller's thread (tests, the demo, whose scenario plans in milliseconds).

A worker that dies or gives no plan within `timeout_s` is replaced at once and the call raises
`PlannerFailed`; the refresher keeps the previous plan, marks it degraded, and the next refresh
plans on the new worker.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol, Sequence

from wattwise.models.plan import Plan
from wattwise.models.planner import plan as make_plan
from wattwise.models.snapshot import PolicyState, Snapshot

log = logging.getLogger(__name__)

Result = tuple[tuple[Plan, PolicyState], ...]


class PlannerFailed(RuntimeError):
    """No plan this time (the worker died, hung, or the planner is stopped). The previous plan
    stays in use; retrying helps: a new worker is already started for the next refresh."""


def plan_all(snapshots: Sequence[Snapshot]) -> Result:
    """What the worker runs: the pure planner once per snapshot."""
    return tuple(make_plan(s) for s in snapshots)


def _worker_pid() -> int:
    """The worker's first task: report its pid (the planner is already imported by now)."""
    return os.getpid()


class PlanRunner(Protocol):
    def start(self) -> None: ...

    def run(self, snapshots: Sequence[Snapshot]) -> Result: ...

    def stop(self) -> None: ...


class InlinePlanner:
    """Plans on the calling thread (tests, the demo)."""

    def start(self) -> None:
        pass

    def run(self, snapshots: Sequence[Snapshot]) -> Result:
        return plan_all(snapshots)

    def stop(self) -> None:
        pass


def default_context() -> str:
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


class ProcessPlanner:
    """Plans in one worker process, created by `start()` (or the first `run()`), replaced when it
    dies or hangs, and ended by `stop()` (a plan in progress is abandoned)."""

    def __init__(self, *, timeout_s: float = 120.0, context: str | None = None):
        if context == "fork":
            raise ValueError("the planner worker must not be forked from a process with gRPC threads; "
                             "use 'forkserver' or 'spawn'")
        self.timeout_s = timeout_s
        self._ctx = multiprocessing.get_context(context or default_context())
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._pid: Future | None = None
        self._running = 0
        self._closed = False
        self.restarts = 0

    def start(self) -> None:
        with self._lock:
            self._ensure()

    def _ensure(self) -> ProcessPoolExecutor:
        if self._closed:
            raise PlannerFailed("the planner worker is stopped (the scaler is shutting down)")
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=self._ctx)
            self._pid = self._pool.submit(_worker_pid)
            log.info("planner worker process starting (%s)", self._ctx.get_start_method())
        return self._pool

    def worker_pid(self, timeout_s: float = 60.0) -> int:
        """The current worker's pid (waits for it to be up)."""
        with self._lock:
            self._ensure()
            pid = self._pid
        return pid.result(timeout_s)

    def run(self, snapshots: Sequence[Snapshot]) -> Result:
        with self._lock:
            pool = self._ensure()
            pid = self._pid
            self._running += 1
        try:
            try:
                future = pool.submit(plan_all, tuple(snapshots))
                return future.result(timeout=self.timeout_s)
            except BrokenProcessPool as e:
                self._replace(pool)
                raise PlannerFailed(f"the planner worker process died ({e}); started a new one, the next "
                                    "refresh plans again") from e
            except FutureTimeout:
                _kill(pid)
                self._replace(pool)
                raise PlannerFailed(f"the planner worker gave no plan within {self.timeout_s:g} s; stopped it "
                                    "and started a new one, the next refresh plans again") from None
            except RuntimeError as e:   # submit after shutdown: stop() raced with this call
                if self._closed:
                    raise PlannerFailed("the planner worker is stopped (the scaler is shutting down)") from e
                raise
        finally:
            with self._lock:
                self._running -= 1

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is not broken:
                return                   # someone replaced it already
            self._pool = None
            broken.shutdown(wait=False, cancel_futures=True)
            if self._closed:
                return
            self.restarts += 1
            log.warning("planner worker process replaced (restart %d)", self.restarts)
            self._ensure()

    def stop(self) -> None:
        with self._lock:
            self._closed = True
            pool, pid, busy = self._pool, self._pid, self._running > 0
            self._pool = None
        if pool is None:
            return
        pool.shutdown(wait=False, cancel_futures=True)
        if busy:
            _kill(pid)                   # an idle worker exits by itself; a busy one would finish its plan first
        pool.shutdown(wait=True)


def _kill(pid: Future | None) -> None:
    if pid is None or not pid.done() or pid.exception() is not None:
        return
    try:
        os.kill(pid.result(), signal.SIGKILL)
    except ProcessLookupError:
        pass
