"""The `wattwise` command. Each subcommand lives in its own module with `add_arguments(parser)`
and `run(args) -> int`; this file only wires them, imported lazily so `wattwise plan` never pays
for gRPC or the Kubernetes client."""

from __future__ import annotations

import argparse
import importlib
import sys

from wattwise import __version__
from wattwise.models.errors import WattWiseError

SUBCOMMANDS = {
    "plan": ("wattwise.plan_cli", "decide replicas and placement for a scenario file"),
    "simulate": ("wattwise.simulations.cli", "replay demand and carbon traces through WattWise and baselines"),
    "fit": ("wattwise.telemetry.fit_cli", "fit energy models from Kepler and FPS history in Prometheus"),
    "serve": ("wattwise.serve_cli", "run the KEDA external scaler and/or the scheduler extender"),
    "scaler-call": ("wattwise.scaler.client_cli", "call a running scaler like KEDA does"),
    "explain": ("wattwise.explain_cli", "show the plan a running extender holds, and why"),
}


def build_parser(only: str | None = None) -> tuple[argparse.ArgumentParser, dict]:
    parser = argparse.ArgumentParser(prog="wattwise", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"wattwise {__version__}")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    parser.add_argument("--log-json", action="store_true", help="log one JSON object per line")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = {}
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if only is None or only == name:
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as e:
                if e.name != module_name:
                    raise
                continue
            module.add_arguments(p)
            modules[name] = module
    return parser, modules


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    chosen = next((a for a in argv if a in SUBCOMMANDS), None)
    parser, modules = build_parser(chosen)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    if args.command not in modules:
        parser.error(f"'{args.command}' is not available in this build")
    from wattwise.logs import configure_logging

    configure_logging(args.log_level, args.log_json)
    try:
        return int(modules[args.command].run(args) or 0)
    except WattWiseError as e:
        print(f"wattwise {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
