"""`python -m wattwise.scheduler`: the extender alone, on a scenario's plan (for trying it out).

`wattwise serve --extender` is the real entry point; this one needs no scaler.
"""

from __future__ import annotations

import argparse
import signal
import threading

from wattwise.logs import configure_logging
from wattwise.models import BUNDLED_SCENARIO
from wattwise.models.scenario import load_scenario
from wattwise.runtime import StaticPlanSource
from wattwise.scheduler.server import add_extender_arguments, start_extender_from_args


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wattwise.scheduler", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--scenario", default=str(BUNDLED_SCENARIO), help="scenario whose plan is served")
    parser.add_argument("--demo", action="store_true", help="node cache from the scenario, not the API server")
    parser.add_argument("--log-level", default="INFO")
    add_extender_arguments(parser)
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    source = StaticPlanSource(load_scenario(args.scenario).snapshot)
    handle = start_extender_from_args(args, source)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    print(f"WattWise scheduler extender on {handle.url} (Ctrl-C to stop)", flush=True)
    done.wait()
    handle.stop(5.0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
