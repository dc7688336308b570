"""The decision core imports no adapter stack: no gRPC, Kubernetes client, HTTP framework or
Prometheus client. Checked in a fresh interpreter so other tests' imports cannot hide a leak.

import-linter's "core" contract (pyproject.toml, run by .ci/run) forbids the same statically, with
the doors and entry points; this test also catches a third-party package that pulls one in."""

import subprocess
import sys

BANNED = {"grpc", "grpc_health", "grpc_reflection", "kubernetes", "aiohttp", "flask", "fastapi", "starlette",
          "uvicorn", "prometheus_api_client", "prometheus_client", "requests", "urllib3", "http.server"}

PROGRAM = """
import importlib, pkgutil, sys
import wattwise.models as core
for info in pkgutil.iter_modules(core.__path__):
    importlib.import_module("wattwise.models." + info.name)
print("\\n".join(sorted(sys.modules)))
"""


def test_core_imports_no_adapter_stack():
    loaded = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, check=True).stdout.split()
    assert "wattwise.models.planner" in loaded  # the probe really imported the core
    leaks = sorted(m for m in loaded if m in BANNED or m.split(".")[0] in BANNED)
    assert leaks == [], f"the core pulled in {leaks}"
