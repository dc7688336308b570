"""Prometheus series to pandas frames, and Kubernetes identity (pod -> node, workload, class)."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pandas as pd

from wattwise.models.labels import DEFAULT_MAPPING, LabelMapping, node_from_k8s
from wattwise.telemetry.prometheus.client import Series
from wattwise.telemetry.prometheus.promql import ksm_label_name


def series_frame(series: list[Series], label_columns: dict[str, str], value_column: str) -> pd.DataFrame:
    """Long frame: one row per sample; `label_columns` maps Prometheus label -> column name."""
    cols = list(label_columns.values()) + ["t_s", value_column]
    if not series:
        return pd.DataFrame({c: pd.Series(dtype=object if c in label_columns.values() else float) for c in cols})
    lengths = [len(s.t_s) for s in series]
    data = {col: np.repeat(np.array([s.labels.get(lab, "") for s in series], dtype=object), lengths)
            for lab, col in label_columns.items()}
    data["t_s"] = np.concatenate([s.t_s for s in series])
    data[value_column] = np.concatenate([s.values for s in series])
    return pd.DataFrame(data)


_DEPLOYMENT_SUFFIX = re.compile(r"-[a-z0-9]{6,10}-[a-z0-9]{5}$")
_SHORT_SUFFIX = re.compile(r"-[a-z0-9]{5}$")
_ORDINAL_SUFFIX = re.compile(r"-\d+$")


def workload_from_pod_name(namespace: str, pod: str) -> str:
    """Fallback when kube_pod_labels is absent: strip ReplicaSet/DaemonSet/StatefulSet suffixes."""
    for pattern in (_DEPLOYMENT_SUFFIX, _SHORT_SUFFIX, _ORDINAL_SUFFIX):
        stripped = pattern.sub("", pod)
        if stripped != pod and stripped:
            return f"{namespace}/{stripped}"
    return f"{namespace}/{pod}"


def known_label_keys(mapping: LabelMapping, extra: tuple[str, ...] = ()) -> list[str]:
    keys: list[str] = []
    for group in (mapping.tee_labels, mapping.tee_ready_labels):
        for values in group.values():
            keys.extend(values)
    keys.extend(mapping.amx_labels)
    keys.extend([mapping.vendor_label, mapping.family_label, mapping.model_id_label, mapping.gpu_product_label,
                 mapping.gpu_count_label, mapping.cc_mode_label, mapping.cc_ready_label, mapping.zone_label,
                 mapping.instance_type_label, mapping.class_label, "kubernetes.io/hostname",
                 "topology.kubernetes.io/region"])
    keys.extend(extra)
    return keys


def k8s_labels_from_ksm(ksm_labels: dict[str, str], mapping: LabelMapping, extra_keys: tuple[str, ...] = ()) -> dict[str, str]:
    """kube-state-metrics' `label_<sanitized>` labels back to Kubernetes keys where the key is known.

    Sanitising is lossy (dots and slashes both become `_`), so only keys WattWise knows (the label
    mapping plus `extra_keys`) are restored; the others stay under their `label_...` name.
    """
    back = {ksm_label_name(k): k for k in known_label_keys(mapping, extra_keys)}
    out = {}
    for name, value in ksm_labels.items():
        if name.startswith("label_"):
            out[back.get(name, name)] = value
    return out


def node_classes_from_labels(node_labels: dict[str, dict[str, str]], class_label: str | None = None,
                             mapping: LabelMapping = DEFAULT_MAPPING) -> dict[str, str]:
    """Node name -> node class name, through models.labels.node_from_k8s.

    `class_label` (a Kubernetes label key, or its `label_...` form) names the class directly.
    """
    if class_label:
        mapping = dataclasses.replace(mapping, class_label=class_label)
    out = {}
    for node, ksm in node_labels.items():
        labels = k8s_labels_from_ksm(ksm, mapping, (class_label,) if class_label else ())
        if class_label and class_label.startswith("label_") and class_label in ksm:
            labels[class_label] = ksm[class_label]
        _, node_class = node_from_k8s({"metadata": {"name": node, "labels": labels}}, mapping)
        out[node] = node_class.name
    return out
