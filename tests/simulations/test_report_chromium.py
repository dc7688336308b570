"""The report in headless Chromium, as a reader opens it (scripts/check_report.py): offline, every
chart drawn, legends inside their figures, no JavaScript error, at a desktop and a phone width.
Skipped where Chromium is not installed."""

import subprocess
import sys
from pathlib import Path

import pytest

from .report_fixture import run_and_report

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not installed (Debian: apt-get install -y chromium); "
                                                  "the report's checks in a browser need it")
def test_report_in_headless_chromium(tmp_path):
    _, report, _ = run_and_report(tmp_path / "run")
    shots = tmp_path / "shots"
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "check_report.py"), "--report", str(report),
                           "--out", str(shots)], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1280 px: ok" in done.stdout and "390 px: ok" in done.stdout
    assert (shots / "report-1280.png").stat().st_size > 10_000
    assert (shots / "report-390.png").stat().st_size > 10_000
