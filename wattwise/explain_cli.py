"""`wattwise explain`: the plan a running extender holds (its `GET /plan`), for a person."""

from __future__ import annotations

import argparse
import http.client
import json
import ssl
import sys
import urllib.error
import urllib.request
from typing import Any

from wattwise.models.errors import InvalidInputError, WattWiseError, require_positive
from wattwise.tls_files import client_context


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--address", required=True, metavar="HOST:PORT",
                        help="the extender's HTTP(S) address (or a URL: https://host:port)")
    parser.add_argument("workload", nargs="?", metavar="NAMESPACE/NAME", help="explain this workload only")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON (what GET /plan returns)")
    parser.add_argument("--ca", help="PEM CA to verify an HTTPS extender")
    parser.add_argument("--cert", help="PEM client certificate, when the extender requires one")
    parser.add_argument("--key", help="PEM private key of --cert")
    parser.add_argument("--timeout-s", type=float, default=10.0, help="seconds to wait for the answer (default 10)")


EXTENDER_HINT = "give the extender's HTTP(S) port (deploy/: 8888), not the scaler's gRPC port (6000)"


def fetch_plan(address: str, ca: str | None = None, cert: str | None = None, key: str | None = None,
               timeout_s: float = 10.0) -> dict[str, Any]:
    base = address if "://" in address else f"{'https' if ca or cert else 'http'}://{address}"
    context = tls_context(ca, cert, key) if base.startswith("https://") else None
    return _get_json(f"{base.rstrip('/')}/plan", context, timeout_s)


def tls_context(ca: str | None, cert: str | None, key: str | None) -> ssl.SSLContext:
    """The client's TLS 1.2+ context from the flags' files (`tls_files.client_context`)."""
    return client_context(("--ca", ca), ("--cert", cert), ("--key", key))


def _get_json(url: str, context: ssl.SSLContext | None, timeout_s: float) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s, context=context) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as e:
        detail = e.read(300).decode("utf-8", "replace")
        raise WattWiseError(f"{url} answered {e.code}: {detail}") from None
    except (http.client.HTTPException, ValueError) as e:
        raise WattWiseError(f"{url} did not answer as the extender does ({type(e).__name__}); {EXTENDER_HINT}") \
            from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        hint = EXTENDER_HINT if isinstance(reason, ssl.SSLError) else \
            "is `wattwise serve --extender` running there?"
        raise WattWiseError(f"cannot reach {url} ({reason}); {hint}") from None


def render(doc: dict[str, Any], only: str | None = None) -> str:
    inputs = doc.get("inputs", {})
    lines = [f"plan {doc['plan_version']} at {doc['generated_at']}, objective {doc['objective']}, "
             f"{doc.get('power_w', 0):.0f} W, {doc.get('carbon_g_per_h', 0):.0f} gCO2/h (solver {doc.get('solver')})"]
    if doc.get("degraded"):
        lines.append("DEGRADED: " + "; ".join(doc.get("degraded_reasons", [])))
    nodes = inputs.get("nodes", {})
    states = [n["state"] for n in doc.get("nodes", [])]
    lines.append(f"nodes: {nodes.get('count', 0)} ({nodes.get('source', '')}): "
                 f"{states.count('active')} active, {states.count('idle')} idle")
    for zone, c in inputs.get("carbon", {}).items():
        value = f"{c['g_per_kwh']:.0f} g/kWh" if c.get("g_per_kwh") is not None else "no reading"
        counted = f", counted at {c['counted_g_per_kwh']:.0f}" if c.get("counted_g_per_kwh") is not None else ""
        lines.append(f"carbon {zone}: {value} from {c.get('provider') or '-'} ({c.get('status')}{counted})")
    for item in inputs.get("left_out", []):
        lines.append(f"left out: {item['scaled_object']}: {item['reason']}")
    workloads = doc.get("workloads", [])
    if only is not None:
        workloads = [w for w in workloads if w["key"] == only]
        if not workloads:
            known = ", ".join(w["key"] for w in doc.get("workloads", [])) or "none"
            raise InvalidInputError(only, "no such workload in the plan", f"known: {known}")
    fitted = {(m["workload"], m["node_class"]): m["kind"] for m in inputs.get("models", [])}
    for w in workloads:
        lines.append("")
        lines.append(f"{w['key']}: {w['replicas']} replicas for {w['demand_fps']:.1f} fps"
                     + (f", {w['unmet_fps']:.1f} fps UNMET" if w["unmet_fps"] > 0 else "")
                     + (" (held: telemetry untrustworthy)" if w.get("held") else ""))
        history = _forecast_line(w.get("forecast"), w.get("forecast_history"))
        if history:
            lines.append(f"  forecast: {history}")
        for p in w["placements"]:
            kind = fitted.get((w["key"], p["node_class"]), "prior")
            lines.append(f"  {p['replicas']:3d} x {p['node']} ({p['node_class']}, {kind} model)")
        lines.extend(f"  - {r}" for r in w["reasons"])
    return "\n".join(lines)


def _forecast_line(forecast: dict[str, Any] | None, history: dict[str, Any] | None) -> str:
    """Pre-warming for a person: what is expected, how much the forecaster has learned, and
    whether that came from history read back on start."""
    parts = []
    if forecast:
        parts.append(f"{forecast['expected_fps']:.1f} fps expected within {forecast['lead_s']:.0f} s")
    if history:
        parts.append(f"{history['profile_h']:.1f} h of the daily profile learned "
                     f"({history['profile_bins']}/{history['bins']} bins)")
        backfill = history.get("backfill") or {}
        if history.get("seeded_samples"):
            skipped = backfill.get("skipped", 0)
            parts.append(f"seeded with {history['seeded_samples']} points from {history['seeded_from']} to "
                         f"{history['seeded_to']}" + (f" ({skipped} implausible left out)" if skipped else ""))
        elif backfill.get("error"):
            parts.append(f"not seeded, learning from the start: {backfill['error']}")
        else:
            parts.append("learned live only (no history seeded)")
    return "; ".join(parts)


def run(args: argparse.Namespace) -> int:
    if bool(args.cert) != bool(args.key):
        raise InvalidInputError("--cert/--key", "give both or neither")
    require_positive(args.timeout_s, "--timeout-s", "give seconds to wait for the answer, e.g. 10")
    doc = fetch_plan(args.address, args.ca, args.cert, args.key, args.timeout_s)
    if args.json:
        only = [w for w in doc.get("workloads", []) if args.workload in (None, w["key"])]
        json.dump(doc if args.workload is None else {**doc, "workloads": only}, sys.stdout, indent=2)
        print()
        return 0
    print(render(doc, args.workload))
    return 0
