"""The `wattwise` command itself: a user-facing --help, --log-level among the levels there are,
and output cut short by its reader (`| head`) ending quietly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from wattwise.cli import main

REPO = Path(__file__).resolve().parents[1]


def test_help_describes_wattwise_for_its_users(capsys):
    try:
        main(["--help"])
    except SystemExit:
        pass
    out = " ".join(capsys.readouterr().out.split())
    assert "KEDA external scaler" in out and "kube-scheduler extender" in out
    assert "subcommand lives in its own module" not in out and "The `wattwise` command" not in out


def test_an_unknown_log_level_is_refused(capsys):
    try:
        main(["--log-level", "LOUD", "plan", "--scenario", "scenarios/metro-retail.yaml"])
    except SystemExit as e:
        assert e.code == 2
    else:
        raise AssertionError("--log-level LOUD was accepted")
    assert "invalid choice: 'LOUD'" in capsys.readouterr().err


def test_plan_into_a_closed_pipe_ends_quietly():
    wattwise = subprocess.Popen([sys.executable, "-m", "wattwise", "plan", "--scenario", "scenarios/metro-retail.yaml"], cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert wattwise.stdout is not None
    wattwise.stdout.readline()
    wattwise.stdout.close()          # what `head -1` does after its line
    _, err = wattwise.communicate(timeout=120)
    assert b"Traceback" not in err and b"BrokenPipeError" not in err, err.decode()
    assert wattwise.returncode == 0
