"""The scaler's door-independent logic: validate metadata, register, answer from the state.

The gRPC servicer only decodes, calls one of these methods and encodes; the client CLI and the
tests can call them too.
"""

from __future__ import annotations

import logging
from typing import Callable, Mapping

from wattwise.models.trigger_metadata import MetadataError, ScalerRequest
from wattwise.scaler import answer
from wattwise.scaler.metadata import MetadataCache
from wattwise.scaler.pod_counts import PodCounts
from wattwise.scaler.registry import Registry
from wattwise.scaler.state import ScalerState

log = logging.getLogger(__name__)


class ScalerCore:
    def __init__(self, registry: Registry, state: Callable[[], ScalerState | None],
                 cache: MetadataCache | None = None, pods: PodCounts | None = None,
                 rollout: answer.Rollout = answer.NO_DELETION_COST):
        """`pods`: running/ready pods per node (make-before-break surge); None: plan replicas only.
        `rollout`: whether the surge may apply to a workload (`answer.Rollout`)."""
        self.registry = registry
        self._state = state
        self._cache = cache or MetadataCache()
        self.pods = pods
        self.rollout = rollout
        registry.on_forget(lambda request, _gone: self._cache.discard(request))

    def state(self) -> ScalerState | None:
        return self._state()

    @property
    def cache(self) -> MetadataCache:
        return self._cache

    def request(self, name: str, namespace: str, metadata: Mapping[str, str]) -> ScalerRequest:
        """Validate (raises MetadataError, oversized input included) and register the ScaledObject."""
        req = self._cache.parse(name, namespace, metadata)
        self.registry.touch(req)
        return req

    def metric_spec(self, name: str, namespace: str, metadata: Mapping[str, str]) -> answer.SpecAnswer:
        """The spec needs only valid metadata (its name and target never depend on the plan), so
        it is answered even for a ScaledObject the registry refuses for now (not listed from the
        API server yet, or left out): KEDA builds the HPA from the first answer and, on an error,
        builds it without this metric, and the HPA then falls back to CPU at 80%. GetMetrics and
        IsActive refuse such a workload meanwhile, so the HPA holds its count."""
        req = self._cache.parse(name, namespace, metadata)
        try:
            self.registry.touch(req)
        except MetadataError as e:
            log.info("GetMetricSpec for %s answered, though it is not planned: %s", req.workload_key, e)
        return answer.metric_spec(req)

    def metric_value(self, name: str, namespace: str, metadata: Mapping[str, str],
                     metric_name: str) -> answer.ValueAnswer:
        req = self.request(name, namespace, metadata)
        answer.check_metric_name(req, metric_name)
        return answer.metric_value(req, self._state(), self.pods, self.rollout)

    def is_active(self, name: str, namespace: str, metadata: Mapping[str, str]) -> bool:
        return answer.is_active(self.request(name, namespace, metadata), self._state(), self.pods, self.rollout)
