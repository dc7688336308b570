"""constraints.txt pins every runtime dependency, the environment the tests run in has exactly
those versions, and the image builds its wheels from them: what is tested is what ships."""

from __future__ import annotations

import importlib.metadata as md
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]


def _key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins() -> dict[str, str]:
    out = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not pinned with =="
            out[_key(name)] = version
    return out


def runtime_closure() -> dict[str, str]:
    """Every distribution the installed wattwise needs at run time (no extras), with its version."""
    found: dict[str, str] = {}

    def walk(name: str) -> None:
        key = _key(name)
        if key in found:
            return
        found[key] = md.version(name)
        for text in md.distribution(name).requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                walk(req.name)

    walk("wattwise")
    found.pop("wattwise")
    return found


def test_every_runtime_dependency_is_pinned_and_installed_at_its_pin():
    pinned, installed = pins(), runtime_closure()
    assert sorted(set(installed) - set(pinned)) == [], "add these to constraints.txt"
    assert sorted(set(pinned) - set(installed)) == [], "constraints.txt pins what nothing needs"
    assert {k: v for k, v in installed.items() if pinned[k] != v} == {}, "run ./dev again after changing constraints.txt"


def test_the_pins_satisfy_pyproject():
    pinned = pins()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for text in project["dependencies"]:
        req = Requirement(text)
        assert req.specifier.contains(pinned[_key(req.name)], prereleases=True), (text, pinned[_key(req.name)])


def test_the_image_and_dev_install_with_the_pins():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r"pip wheel .*--constraint constraints\.txt", dockerfile)
    assert "!constraints.txt" in (REPO / ".dockerignore").read_text().splitlines()
    assert "--constraint constraints.txt" in (REPO / "dev").read_text()
