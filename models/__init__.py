"""The decision core: pure functions of a snapshot (no I/O, no clock, no globals)."""

from pathlib import Path

# The bundled example scenario. scenarios/ installs as wattwise/scenarios beside this package
# (pyproject's package-dir), so this path is the same relative to models/ in a checkout and in an
# installed wheel, and the scenario's own relative paths (../telemetry/data, ../data) hold in both.
BUNDLED_SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "metro-retail.yaml"
