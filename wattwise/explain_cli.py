"""`wattwise explain`: the plan a running extender holds (its `GET /plan`), for a person."""

from __future__ import annotations

import argparse
import json
import ssl
import sys
import urllib.error
import urllib.request
from typing import Any

from wattwise.models.errors import InvalidInputError, WattWiseError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--address", required=True, metavar="HOST:PORT",
                        help="the extender's HTTP(S) address (or a URL: https://host:port)")
    parser.add_argument("workload", nargs="?", metavar="NAMESPACE/NAME", help="explain this workload only")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON (what GET /plan returns)")
    parser.add_argument("--ca", help="PEM CA to verify an HTTPS extender")
    parser.add_argument("--cert", help="PEM client certificate, when the extender requires one")
    parser.add_argument("--key", help="PEM private key of --cert")
    parser.add_argument("--timeout-s", type=float, default=10.0, help="seconds to wait for the answer (default 10)")


def fetch_plan(address: str, ca: str | None = None, cert: str | None = None, key: str | None = None,
               timeout_s: float = 10.0) -> dict[str, Any]:
    base = address if "://" in address else f"{'https' if ca or cert else 'http'}://{address}"
    context = None
    if base.startswith("https://"):
        context = ssl.create_default_context(cafile=ca)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if cert:
            context.load_cert_chain(cert, key)
    try:
        with urllib.request.urlopen(f"{base.rstrip('/')}/plan", timeout=timeout_s, context=context) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as e:
        detail = e.read(300).decode("utf-8", "replace")
        raise WattWiseError(f"{base}/plan answered {e.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise WattWiseError(f"cannot reach {base}/plan ({reason}); is `wattwise serve --extender` running there?") from None


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
        for p in w["placements"]:
            kind = fitted.get((w["key"], p["node_class"]), "prior")
            lines.append(f"  {p['replicas']:3d} x {p['node']} ({p['node_class']}, {kind} model)")
        lines.extend(f"  - {r}" for r in w["reasons"])
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if bool(args.cert) != bool(args.key):
        raise InvalidInputError("--cert/--key", "give both or neither")
    doc = fetch_plan(args.address, args.ca, args.cert, args.key, args.timeout_s)
    if args.json:
        only = [w for w in doc.get("workloads", []) if args.workload in (None, w["key"])]
        json.dump(doc if args.workload is None else {**doc, "workloads": only}, sys.stdout, indent=2)
        print()
        return 0
    print(render(doc, args.workload))
    return 0
