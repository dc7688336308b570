"""CI step: pip-audit over the installed environment (the pins the tests just ran with), WattWise
itself skipped (--skip-editable: it is not on PyPI).

Fails (exit 1) on a known vulnerability, one line each: package, version, advisory, fixed in.
Passes with one line saying so when nothing could be audited: the vulnerability service is
unreachable (no network), or it knows none of the installed versions (an offline mirror). Fails
on anything else pip-audit cannot do, so a broken step never looks like a clean one.

The service is PyPI's JSON API (pip-audit's default): it serves the PyPA advisory database (the
data osv.dev holds for PyPI) from the host pip already reaches, so a machine that can install
can audit; `--vulnerability-service osv` would need api.osv.dev as well. Run with the virtual
environment's Python: `.venv/bin/python .ci/pip_audit.py`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

TIMEOUT_S = 300
UNREACHABLE = ("ConnectionError", "NameResolutionError", "Max retries exceeded", "Temporary failure in name resolution",
               "Name or service not known", "Network is unreachable", "timed out", "ConnectTimeout", "ReadTimeout")


def summarise(report: dict | None, returncode: int, stderr: str) -> tuple[int, list[str]]:
    """pip-audit's JSON report (None: it wrote none), exit code and stderr -> (exit code, lines)."""
    if report is None:
        last = next((line.strip() for line in reversed(stderr.splitlines()) if line.strip()), "no output")
        if returncode == 124 or any(s in stderr for s in UNREACHABLE):
            return 0, [f"pip-audit: vulnerability service unreachable, dependencies NOT audited ({last[:200]})"]
        return 1, [f"pip-audit failed (exit {returncode}): {last[:300]}"]
    deps = report.get("dependencies", [])
    audited = [d for d in deps if "skip_reason" not in d]
    found = [(d, v) for d in audited for v in d.get("vulns", [])]
    if found:
        return 1, [f"pip-audit: {d['name']} {d['version']}: {v['id']}"
                   f"{' (' + ', '.join(v['aliases']) + ')' if v.get('aliases') else ''}: "
                   + (f"fixed in {', '.join(v['fix_versions'])}" if v.get("fix_versions") else "no fix released")
                   for d, v in found]
    if deps and not audited:
        return 0, [f"pip-audit: the vulnerability service knows none of the {len(deps)} installed versions "
                   "(offline or a mirror without vulnerability data): dependencies NOT audited"]
    if returncode != 0:
        return 1, [f"pip-audit failed (exit {returncode}) without reporting a vulnerability: "
                   f"{stderr.strip()[-300:] or 'no output'}"]
    skipped = len(deps) - len(audited)
    return 0, [f"pip-audit: {len(audited)} dependencies, no known vulnerabilities"
               + (f" ({skipped} not known to the service, not audited)" if skipped else "")]


def main() -> int:
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "report.json"
        try:
            done = subprocess.run([sys.executable, "-m", "pip_audit", "--skip-editable", "--progress-spinner", "off",
                                   "--format", "json", "--output", str(out)],
                                  capture_output=True, text=True, timeout=TIMEOUT_S)
            returncode, stderr = done.returncode, done.stderr
        except subprocess.TimeoutExpired:
            returncode, stderr = 124, f"timed out after {TIMEOUT_S} s"
        try:
            report = json.loads(out.read_text())
        except (OSError, ValueError):
            report = None
    code, lines = summarise(report, returncode, stderr)
    for line in lines:
        print(f"ci: {line}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
