"""`wattwise simulate`: replay demand and carbon traces through WattWise and the baselines."""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from pathlib import Path

from wattwise import out_dir
from wattwise.models import BUNDLED_SCENARIO
from wattwise.models.errors import InvalidInputError
from wattwise.models.scenario import bundled_hint, scenario_path
from wattwise.simulations.policies import KNOWN_POLICIES, POLICY_NAMES

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenario", default=str(BUNDLED_SCENARIO), help="scenario YAML, or a bundled scenario by name: eu-nearby, metro-retail (default: metro-retail)")
    parser.add_argument("--demand", help="demand CSV: timestamp plus a load value per interval, or one row per event")
    parser.add_argument("--demand-start", help="where in the demand trace to start (ISO date; default its first time)")
    parser.add_argument("--carbon", action="append", default=[], metavar="ZONE=CSV",
                        help="carbon trace for a scenario zone (Electricity Maps export or timestamp,g/kWh); repeatable")
    parser.add_argument("--start", help="where in the carbon traces to start (ISO date; default their first time)")
    parser.add_argument("--days", type=float, help="days to simulate (default: the scenario's simulation.days)")
    parser.add_argument("--step-s", type=float, help="simulation step in seconds (default: the scenario's)")
    parser.add_argument("--policies", default=",".join(POLICY_NAMES), help="comma-separated, from: " + ", ".join(KNOWN_POLICIES) + " (default: all but "
                        + ", ".join(p for p in KNOWN_POLICIES if p not in POLICY_NAMES) + ")")
    parser.add_argument("--seed", type=int, default=0, help="random seed (kube-scheduler tie-breaks)")
    parser.add_argument("--out", default="wattwise-sim", help="output folder (default ./wattwise-sim)")
    parser.add_argument("--scheduler-config", metavar="FILE",
                        help="KubeSchedulerConfiguration the extender runs in, for its weight and score plugins "
                             "(default: the shipped second scheduler's, deploy/examples/second-scheduler/"
                             "kube-scheduler-config.second-scheduler.yaml)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="policies run in this many processes at once (default: the CPU count); same results")


def _carbon_overrides(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        zone, sep, path = item.partition("=")
        if not sep or not zone or not path:
            raise InvalidInputError("--carbon", f"{item!r} is not ZONE=CSV", "e.g. --carbon eu-central-1a=DE.csv")
        out[zone] = path
    return out


def _policies(text: str) -> list[str]:
    names = [p.strip() for p in text.split(",") if p.strip()]
    unknown = [p for p in names if p not in KNOWN_POLICIES]
    if unknown or not names:
        raise InvalidInputError("--policies", f"unknown policy {', '.join(unknown) or '(none given)'}",
                                f"choose from {', '.join(KNOWN_POLICIES)}")
    return list(dict.fromkeys(names))


def check_out_dir(text: str) -> Path:
    """The output folder can be made and written, checked before the run (which takes minutes)."""
    return out_dir.check_out_dir(text, "summary.json and report.html")


def _scheduler_config(path: str | None):
    from wattwise.simulations.scheduler_config import SECOND_SCHEDULER, load_scheduler_config

    if path is None:
        return SECOND_SCHEDULER
    if not Path(path).is_file():
        raise InvalidInputError("--scheduler-config", f"no such file: {path}")
    return load_scheduler_config(path)


def run(args: argparse.Namespace) -> int:
    from wattwise.simulations.inputs import check_step_s
    from wattwise.simulations.report_html import write_report
    from wattwise.simulations.run import simulate, write_summary
    from wattwise.simulations.table import format_table
    from wattwise.simulations.timing import ControlTiming

    policies = _policies(args.policies)
    carbon = _carbon_overrides(args.carbon)
    if args.seed < 0:
        raise InvalidInputError("--seed", "must not be negative")
    if args.workers < 1:
        raise InvalidInputError("--workers", "must be at least 1")
    if args.days is not None and not 0 < args.days < math.inf:
        raise InvalidInputError("--days", f"must be > 0, got {args.days:g}")
    if args.step_s is not None:
        check_step_s(args.step_s, "--step-s")
    scenario = scenario_path(args.scenario)
    if not scenario.is_file():
        raise InvalidInputError("--scenario", f"no such file: {scenario}", bundled_hint())
    out = check_out_dir(args.out)
    timing = ControlTiming(scheduler=_scheduler_config(args.scheduler_config))

    result = simulate(scenario, policies, demand_csv=args.demand, demand_start=args.demand_start,
                      carbon_csv=carbon, start=args.start, days=args.days, step_s=args.step_s, seed=args.seed,
                      progress_factory=Progress(policies), timing=timing, workers=args.workers)
    summary_path = write_summary(result, out)
    report_path = write_report(result, out)
    print(format_table(result.summary))
    print(f"\nwrote {summary_path} and {report_path}")
    return 0


class Progress:
    """One status line on stderr for all policies (they may run at once): percent done each, or,
    when stderr is not a terminal, a line as each policy starts and ends."""

    def __init__(self, names, stream=None):
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.done = {name: None for name in names}

    def __call__(self, name: str):
        if not self.tty:
            print(f"simulating {name} ...", file=self.stream, flush=True)
        return lambda done, total: self._update(name, done, total)

    def _update(self, name: str, done: int, total: int) -> None:
        before = self.done[name]
        self.done[name] = done / total if total else 1.0
        if self.tty:
            parts = [f"{n} {'-' if f is None else f'{f:4.0%}'}" for n, f in self.done.items()]
            end = "\n" if all(f == 1.0 for f in self.done.values()) else ""
            self.stream.write("\r" + " | ".join(parts) + end)
            self.stream.flush()
        elif done >= total and before != 1.0:
            print(f"{name} done", file=self.stream, flush=True)
