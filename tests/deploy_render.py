"""deploy/ as `kubectl apply -k` sees it: each kustomization rendered by `kubectl kustomize`, and
each WattWise container's arguments as the kubelet passes them (`$(NAME)` expanded from the
container's env, ConfigMap keys included). Shared by the tests that read deploy/."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
NAMESPACE = "wattwise-system"
KUSTOMIZATIONS = sorted(p.parent.relative_to(DEPLOY).as_posix() for p in DEPLOY.rglob("kustomization.yaml"))
OVERLAYS = [k for k in KUSTOMIZATIONS if k.startswith("overlays/")]   # the installs
SERVE = "Deployment/wattwise:wattwise"   # the one container serving both doors
KUBECTL_MISSING = ("kubectl is not on PATH: install kubectl 1.27 or newer (kustomize 5 is built in; "
                   "https://kubernetes.io/docs/tasks/tools/) to render deploy/")


@functools.cache
def render(kustomization: str) -> tuple[dict, ...]:
    """The objects `kubectl kustomize deploy/<kustomization>` builds; skips without kubectl."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip(KUBECTL_MISSING)
    done = subprocess.run([kubectl, "kustomize", str(DEPLOY / kustomization)], capture_output=True, text=True,
                          timeout=120)
    if done.returncode != 0:
        pytest.fail(f"kubectl kustomize deploy/{kustomization} failed:\n{done.stderr}")
    return tuple(d for d in yaml.safe_load_all(done.stdout) if d)


def load_files(folder: Path) -> list[tuple[Path, dict]]:
    """Every YAML document under `folder` as written (no kustomize), kustomization files left out."""
    out = []
    for path in sorted(folder.rglob("*.yaml")):
        if path.name != "kustomization.yaml":
            out += [(path, d) for d in yaml.safe_load_all(path.read_text()) if d]
    return out


def pod_spec(obj: dict) -> dict | None:
    spec = obj.get("spec") or {}
    if obj.get("kind") == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    return ((spec.get("template") or {}).get("spec")) if "template" in spec else None


_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def expand(text: str, env: dict[str, str]) -> str:
    """The kubelet's expansion of `$(NAME)` in args: a defined NAME is replaced, an undefined one
    stays as written, `$$` is a literal `$`."""
    def one(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))
    return _REFERENCE.sub(one, text)


def container_env(container: dict, objects: tuple[dict, ...] | list[dict]) -> dict[str, str]:
    """The container's env: literal values and ConfigMap keys (from the objects rendered with it)."""
    config_maps = {o["metadata"]["name"]: o.get("data") or {} for o in objects if o.get("kind") == "ConfigMap"}
    env: dict[str, str] = {}
    for item in container.get("env") or ():
        if "value" in item:
            env[item["name"]] = expand(str(item["value"]), env)
            continue
        ref = (item.get("valueFrom") or {}).get("configMapKeyRef")
        assert ref is not None, f"env {item['name']}: only value and configMapKeyRef are resolved here"
        data = config_maps.get(ref["name"])
        assert data is not None, f"env {item['name']}: no ConfigMap {ref['name']} in the same build"
        assert ref["key"] in data, f"env {item['name']}: ConfigMap {ref['name']} has no key {ref['key']}"
        env[item["name"]] = data[ref["key"]]
    return env


def wattwise_containers(objects: tuple[dict, ...] | list[dict]) -> dict[str, list[str]]:
    """`Kind/name:container` -> the arguments `wattwise` gets, for every container of the WattWise
    image that runs its entrypoint."""
    out = {}
    for obj in objects:
        spec = pod_spec(obj)
        for container in (spec or {}).get("containers") or ():
            if "wattwise" in container.get("image", "") and "command" not in container:
                env = container_env(container, objects)
                out[f"{obj['kind']}/{obj['metadata']['name']}:{container['name']}"] = [
                    expand(a, env) for a in container["args"]]
    return out


def flag(args: list[str], name: str) -> str | None:
    """The value of `--name=value` in args (None when absent)."""
    for a in args:
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


def the(objects, kind: str, name: str | None = None) -> dict:
    """The one object of that kind (and name)."""
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"{len(found)} {kind} {name or ''} objects"
    return found[0]
