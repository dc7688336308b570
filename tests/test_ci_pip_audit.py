""".ci/pip_audit.py reads pip-audit's JSON report: a known vulnerability fails the run with a line
naming the package, the advisory and the fix; an unreachable or empty-handed vulnerability service
passes with one line saying nothing was audited; any other failure of pip-audit fails."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / ".ci" / "pip_audit.py"
spec = importlib.util.spec_from_file_location("ci_pip_audit", SCRIPT)
ci = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ci)

OSV_OFFLINE = ("requests.exceptions.ConnectionError: HTTPSConnectionPool(host='api.osv.dev', port=443): Max retries "
               "exceeded with url: /v1/query (Caused by NameResolutionError(\"HTTPSConnection(host='api.osv.dev', "
               "port=443): Failed to resolve 'api.osv.dev' ([Errno -2] Name or service not known)\"))")


def dep(name, version="1.0", vulns=()):
    return {"name": name, "version": version, "vulns": list(vulns)}


def skipped(name):
    return {"name": name, "skip_reason": f"Dependency not found on PyPI and could not be audited: {name} (1.0)"}


def test_a_known_vulnerability_fails_with_one_line_each():
    report = {"dependencies": [dep("requests", "2.19.0", [{"id": "PYSEC-2018-28", "aliases": ["CVE-2018-18074"],
                                                            "fix_versions": ["2.20.0"]}]),
                               dep("numpy"), dep("oldlib", "0.1", [{"id": "GHSA-xxxx", "fix_versions": []}])],
              "fixes": []}
    assert ci.summarise(report, 1, "Found 2 known vulnerabilities in 2 packages") == (1, [
        "pip-audit: requests 2.19.0: PYSEC-2018-28 (CVE-2018-18074): fixed in 2.20.0",
        "pip-audit: oldlib 0.1: GHSA-xxxx: no fix released"])


def test_clean():
    assert ci.summarise({"dependencies": [dep("numpy"), dep("scipy"), skipped("private")]}, 0, "") == (
        0, ["pip-audit: 2 dependencies, no known vulnerabilities (1 not known to the service, not audited)"])


def test_unreachable_service_passes_saying_nothing_was_audited():
    code, [line] = ci.summarise(None, 1, "Traceback (most recent call last):\n  ...\n" + OSV_OFFLINE + "\n")
    assert code == 0 and line.startswith("pip-audit: vulnerability service unreachable, dependencies NOT audited (")
    assert ci.summarise(None, 124, "timed out after 300 s")[0] == 0


def test_a_service_that_knows_no_version_passes_saying_so():
    assert ci.summarise({"dependencies": [skipped("numpy"), skipped("scipy")]}, 0, "") == (0, [
        "pip-audit: the vulnerability service knows none of the 2 installed versions (offline or a mirror without "
        "vulnerability data): dependencies NOT audited"])


def test_any_other_failure_fails():
    assert ci.summarise(None, 2, "usage: pip-audit ...\npip-audit: error: unrecognized arguments: --bogus\n") == (
        1, ["pip-audit failed (exit 2): pip-audit: error: unrecognized arguments: --bogus"])
    assert ci.summarise({"dependencies": [dep("numpy")]}, 1, "something broke")[0] == 1
