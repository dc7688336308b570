"""Every label value in deploy/ is one the API server accepts (at most 63 characters of
`(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?`: no `/`, so `wattwise.io/workload` names the
ScaledObject, not `namespace/name`), in every file as written; tests/test_kustomize.py checks
the objects the overlays build."""

import re
from pathlib import Path

import yaml

DEPLOY = Path(__file__).parents[1] / "deploy"
LEGAL = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def label_maps(node, path=""):
    """(path, labels) of every `labels` and `matchLabels` map in a document, and of every
    kustomization's `labels[].pairs` (labels kustomize adds to every object it builds)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("labels", "matchLabels", "pairs") and isinstance(value, dict):
                yield f"{path}.{key}", value
            else:
                yield from label_maps(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from label_maps(item, f"{path}[{i}]")


def test_every_label_value_in_deploy_is_legal():
    checked = 0
    for f in sorted(DEPLOY.rglob("*.yaml")):
        for n, doc in enumerate(yaml.safe_load_all(f.read_text())):
            for where, labels in label_maps(doc):
                for key, value in labels.items():
                    assert isinstance(value, str) and len(value) <= 63 and LEGAL.match(value), \
                        f"{f.relative_to(DEPLOY)} document {n} {where}.{key}: {value!r} is not a legal label value"
                    checked += 1
    assert checked > 0
