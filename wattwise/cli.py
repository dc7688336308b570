"""The `wattwise` command. Each subcommand lives in its own module with `add_arguments(parser)`
and `run(args) -> int`; this file only wires them, imported lazily so `wattwise plan` never pays
for gRPC or the Kubernetes client."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from wattwise import __version__
from wattwise.models.errors import WattWiseError

DESCRIPTION = ("WattWise: energy- and carbon-aware scaling and placement of video-inference workloads on "
               "Kubernetes (a KEDA external scaler and a kube-scheduler extender), with a planner, a simulator "
               "and energy-model fitting you can run on their own.")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

SUBCOMMANDS = {
    "plan": ("wattwise.plan_cli", "decide replicas and placement for a scenario file"),
    "simulate": ("wattwise.simulations.cli", "replay demand and carbon traces through WattWise and baselines"),
    "fit": ("wattwise.telemetry.fit_cli", "fit energy models from Kepler and FPS history in Prometheus"),
    "serve": ("wattwise.serve_cli", "run the KEDA external scaler and/or the scheduler extender"),
    "scaler-call": ("wattwise.scaler.client_cli", "call a running scaler like KEDA does"),
    "explain": ("wattwise.explain_cli", "show the plan a running extender holds, and why"),
}


def build_parser(only: str | None = None) -> tuple[argparse.ArgumentParser, dict]:
    parser = argparse.ArgumentParser(prog="wattwise", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"wattwise {__version__}")
    parser.add_argument("--log-level", default="INFO", type=str.upper, choices=LOG_LEVELS,
                        help="DEBUG, INFO, WARNING or ERROR (default INFO)")
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
    except BrokenPipeError:       # `wattwise plan ... | head`: the reader has what it wanted
        _silence_stdout()
        return 0


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush of what the closed pipe did not
    take raises nothing more."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
