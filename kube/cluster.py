"""One list-then-watch per resource for the whole process: what the scaler and the extender read.

`KubeCluster` starts, for each resource below, one `ListWatch` into one `ObjectStore`; both doors
read the same stores (and the same derived views, e.g. `workload_pods()`), so a process running
the scaler and the extender lists each resource once. A resource the API server does not serve
(404: the KEDA CRD is not installed) or RBAC forbids (403) is reported (the store's `last_error`,
`status()`, one log line) and retried with backoff; the other resources go on.
"""

from __future__ import annotations

import functools
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable

from wattwise.kube.client import api_client_from
from wattwise.kube.list_watch import ListWatch
from wattwise.kube.store import ObjectStore
from wattwise.kube.workload_pods import WorkloadPods

# Pods that still hold room on their node: every tenant's, all namespaces (free room needs them all).
UNFINISHED_PODS = "status.phase!=Succeeded,status.phase!=Failed"


@dataclass(frozen=True)
class Resource:
    name: str             # the plural, as in the API path and RBAC rules
    group_version: str    # "v1" for the core group
    attribute: str        # of KubeCluster
    list_method: Callable  # ApiClient -> the kubernetes client's list method (all namespaces)
    not_served_hint: str = ""

    @property
    def group(self) -> str:
        return self.group_version.rpartition("/")[0]

    def hints(self) -> dict[int, str]:
        group = f'API group "{self.group}"' if self.group else "the core API group"
        hints = {403: f"grant the service account list and watch on {self.name} ({group}) in its ClusterRole"}
        if self.not_served_hint:
            hints[404] = self.not_served_hint
        return hints


def _core(api):
    from kubernetes import client
    return client.CoreV1Api(api)


def _apps(api):
    from kubernetes import client
    return client.AppsV1Api(api)


def _node_v1(api):
    from kubernetes import client
    return client.NodeV1Api(api)


def _custom(api):
    from kubernetes import client
    return client.CustomObjectsApi(api)


RESOURCES = (
    Resource("nodes", "v1", "nodes", lambda api: _core(api).list_node),
    Resource("pods", "v1", "pods", lambda api: functools.partial(_core(api).list_pod_for_all_namespaces,
                                                                 field_selector=UNFINISHED_PODS)),
    Resource("runtimeclasses", "node.k8s.io/v1", "runtime_classes", lambda api: _node_v1(api).list_runtime_class),
    Resource("scaledobjects", "keda.sh/v1alpha1", "scaled_objects",
             lambda api: functools.partial(_custom(api).list_cluster_custom_object, "keda.sh", "v1alpha1",
                                           "scaledobjects"),
             "is KEDA installed? its CRD scaledobjects.keda.sh is missing"),
    Resource("deployments", "apps/v1", "deployments", lambda api: _apps(api).list_deployment_for_all_namespaces),
    Resource("statefulsets", "apps/v1", "stateful_sets", lambda api: _apps(api).list_stateful_set_for_all_namespaces),
)


class KubeCluster:
    """The stores, as attributes: `nodes`, `pods` (unfinished, all namespaces), `runtime_classes`,
    `scaled_objects`, `deployments`, `stateful_sets`; `stores` maps each resource's plural to its
    store. Nothing is listed before `start()`."""

    nodes: ObjectStore
    pods: ObjectStore
    runtime_classes: ObjectStore
    scaled_objects: ObjectStore
    deployments: ObjectStore
    stateful_sets: ObjectStore

    def __init__(self, api_client, resync_s: float = 300.0, *, watch_timeout_s: int = 240, retry_s: float = 2.0,
                 max_retry_s: float = 30.0, page_size: int = 500):
        self.api_client = api_client     # also for the doors' own writes (the pod-deletion-cost PATCHes)
        self.stores: dict[str, ObjectStore] = {}
        self._watches: list[ListWatch] = []
        for r in RESOURCES:
            store = ObjectStore(r.name)
            store.watch = ListWatch(r.name, r.list_method(api_client), store, resync_s, watch_timeout_s,
                                    retry_s, max_retry_s, page_size, r.hints())
            self.stores[r.name] = store
            setattr(self, r.attribute, store)
            self._watches.append(store.watch)
        self._lock = threading.Lock()
        self._workload_pods: WorkloadPods | None = None
        self._started = False

    @classmethod
    def connect(cls, kubeconfig: str | None = None, in_cluster: bool = False, resync_s: float = 300.0,
                **kwargs) -> "KubeCluster":
        """From a kubeconfig file (default: $KUBECONFIG, ~/.kube/config) or the pod's service
        account; an InvalidInputError when that cannot be read."""
        return cls(api_client_from(kubeconfig, in_cluster), resync_s, **kwargs)

    def workload_pods(self) -> WorkloadPods:
        """The one view of WattWise's pods per workload and node over the pods store."""
        with self._lock:
            if self._workload_pods is None:
                self._workload_pods = WorkloadPods(self.pods)
            return self._workload_pods

    def start(self) -> "KubeCluster":
        with self._lock:
            if not self._started:
                for w in self._watches:
                    w.start()
                self._started = True
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        for w in self._watches:
            w.request_stop()
        deadline = time.monotonic() + timeout_s
        for w in self._watches:
            w.join(deadline - time.monotonic())

    def wait_synced(self, timeout_s: float, resources: Iterable[str] | None = None) -> bool:
        """Wait until the named resources (plurals; default all) have been listed."""
        deadline = time.monotonic() + timeout_s
        names = list(self.stores) if resources is None else list(resources)
        return all(self.stores[n].wait_synced(max(0.0, deadline - time.monotonic())) for n in names)

    def status(self) -> str:
        """One line per resource: how many objects, how fresh, or why not."""
        return "\n".join(store.status() for store in self.stores.values())
