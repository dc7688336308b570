"""The workloads to plan, read from the cluster's ScaledObjects instead of KEDA's calls.

With a Kubernetes API, every WattWise process plans every ScaledObject whose trigger names this
scaler, whether KEDA has called it yet or not, so two replicas and an extender running alone
plan the same workloads. `ClusterRegistry` stands where `Registry` stands for the refresher and
the scaler core: `active()` is the cluster's requests, and a KEDA call for a workload no
ScaledObject asks for is refused with a clear message, never planned with guessed defaults.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Protocol

from wattwise.models.cluster_workloads import ClusterWorkloads
from wattwise.models.trigger_metadata import MetadataError, ScalerRequest
from wattwise.models.workload import Workload

log = logging.getLogger(__name__)


class WorkloadSource(Protocol):
    @property
    def synced(self) -> bool: ...

    def current(self) -> ClusterWorkloads: ...

    def subscribe(self, fn: Callable[[], None]) -> None: ...


class _Bases(Mapping[str, Workload]):
    """The base workloads of the source's current ScaledObjects, read at each look-up."""

    def __init__(self, source: WorkloadSource):
        self._source = source

    def __getitem__(self, key: str) -> Workload:
        return self._source.current().bases[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._source.current().bases)

    def __len__(self) -> int:
        return len(self._source.current().bases)


class _Index:
    """One `ClusterWorkloads` looked up by key: its requests by workload, and why each ScaledObject
    left out is left out, by namespace/name. Built once per new result of the source, so a KEDA
    call costs a dict look-up however many ScaledObjects the cluster has."""

    __slots__ = ("of", "workloads", "left_out")

    def __init__(self, of: ClusterWorkloads):
        self.of = of
        self.workloads = frozenset(r.workload_key for r in of.requests)
        left_out: dict[str, str] = {}
        for so, why in of.left_out:
            left_out.setdefault(so, why)          # the first reason, as a scan in order finds it
        self.left_out = left_out


class ClusterRegistry:
    def __init__(self, source: WorkloadSource):
        self._source = source
        self.bases: Mapping[str, Workload] = _Bases(source)
        self._lock = threading.Lock()
        self._known: dict[str, ScalerRequest] = {}
        self._forget: list[Callable[[ScalerRequest, bool], None]] = []
        self._index = _Index(ClusterWorkloads((), {}, ()))

    def on_change(self, fn: Callable[[], None]) -> None:
        self._source.subscribe(fn)

    def on_forget(self, fn: Callable[[ScalerRequest, bool], None]) -> None:
        self._forget.append(fn)

    def active(self) -> tuple[ScalerRequest, ...]:
        requests = tuple(sorted(self._source.current().requests, key=lambda r: r.workload_key))
        now = {r.workload_key: r for r in requests}
        with self._lock:
            gone = [r for k, r in self._known.items() if k not in now]
            self._known = now
        for request in gone:
            log.info("workload %s is gone: its ScaledObject was deleted or no longer names this scaler",
                     request.workload_key)
            for fn in self._forget:
                fn(request, True)
        return requests

    def left_out(self) -> tuple[tuple[str, str], ...]:
        return self._source.current().left_out

    def _indexed(self) -> _Index:
        """The index of the source's current workloads (rebuilt when the source has a new result)."""
        current = self._source.current()
        index = self._index
        if index.of is not current:
            index = _Index(current)
            self._index = index               # one reference swap: readers see the old or the new one
        return index

    def touch(self, request: ScalerRequest) -> bool:
        """A KEDA call: answered only for a workload a ScaledObject in the cluster asks for."""
        index = self._indexed()
        # a ScaledObject left out (one naming a workload another ScaledObject already names, say)
        # is refused even when its workload is planned: that plan is for the other one's pods
        why = index.left_out.get(f"{request.scaled_object_namespace}/{request.scaled_object}", "")
        if why:
            raise MetadataError("workload", f"ScaledObject {request.scaled_object_namespace}/{request.scaled_object} "
                                            f"is left out of the plan: {why}")
        if request.workload_key in index.workloads:
            return False
        if not self._source.synced:
            raise MetadataError("workload", f"workload {request.workload_key} is not known yet: the ScaledObjects "
                                            "have not been listed from the API server (is KEDA installed, and may "
                                            "WattWise list scaledobjects.keda.sh?)")
        raise MetadataError("workload", f"no ScaledObject in the cluster asks this scaler for workload "
                                        f"{request.workload_key}", "check its trigger's scalerAddress and the "
                                        "`workload` key, or wait for the ScaledObject to be listed")

    def __len__(self) -> int:
        return len(self._source.current().requests)
