"""Every container in deploy/ that runs WattWise passes arguments the real command line accepts
(a manifest whose arguments the parser rejects starts a container that exits at once)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from wattwise.cli import build_parser

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def wattwise_containers():
    for path in sorted(DEPLOY.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            spec = ((doc or {}).get("spec") or {}).get("template", {}).get("spec") or {}
            for container in spec.get("containers") or ():
                if "wattwise" in container.get("image", "") and "command" not in container:
                    yield f"{path.relative_to(DEPLOY)}:{container['name']}", container["args"]


CONTAINERS = dict(wattwise_containers())


def test_there_are_wattwise_containers():
    assert {"scaler/deployment.yaml:scaler", "scheduler/extender.yaml:extender"} <= set(CONTAINERS)


@pytest.mark.parametrize("where", sorted(CONTAINERS))
def test_container_args_parse(where):
    parser, _ = build_parser()
    try:
        args = parser.parse_args(CONTAINERS[where])
    except SystemExit as e:   # argparse's way of refusing
        pytest.fail(f"{where}: `wattwise {' '.join(CONTAINERS[where])}` is refused (exit {e.code})")
    assert args.log_json
