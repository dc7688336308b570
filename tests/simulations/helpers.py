"""Small scenarios written on the fly."""

from pathlib import Path

import yaml

ONE_NODE = {
    "name": "one-node",
    "objective": "energy",
    "zones": {"z": {"carbon_g_per_kwh": 200}},
    "node_classes": {"plain": {"cores": 10, "memory_gib": 64, "power": {"idle_w": 100, "max_w": 300, "sleep_w": 5},
                               "startup_s": 0, "startup_tee_s": 0}},
    "nodes": [{"name_prefix": "n", "class": "plain", "zone": "z", "count": 1}],
    "workloads": [{"name": "cam", "model": "classifier-bf16", "streams": 2, "fps_per_stream": 5, "cpu": "1",
                   "memory": "1Gi", "min_replicas": 1, "max_replicas": 1}],
    "simulation": {"days": 1, "step_s": 60},
}


def write_scenario(tmp_path: Path, spec: dict) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path
