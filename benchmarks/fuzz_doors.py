"""The long fuzz run of both doors (issue 15): at least 100,000 generated and mutated inputs per
door over real loopback sockets, the same strategies and judges as the short mode in tests/fuzz.

    .venv/bin/python benchmarks/fuzz_doors.py                      # 100,000 inputs per door
    .venv/bin/python benchmarks/fuzz_doors.py --examples 5000 --door scaler

The inputs are those of the short mode (`tests/fuzz/cases.py`): a quarter generated from scratch
by hypothesis (its generate phase only: nothing is shrunk), the rest recorded valid inputs
mutated, each from one seed of a seeded `random.Random` (hypothesis's own draws would cost more
than the call). Every input is judged (`tests/fuzz/judges.py`) and counted. Prints per door:
inputs by kind, answers by HTTP status or gRPC code, 5xx / INTERNAL / UNKNOWN (must be 0),
dropped connections, errors the servers logged, inputs the judges found fault with (must be 0),
the distinct refusal messages (numbers and quoted values blanked) and the 10 most common, the
liveness checks (a valid request every --check-every inputs), wall time and inputs/s.
Exits 1 when any must-be-0 figure is not 0.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import time
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fuzz.cases import (GrpcCase, HttpCase, extender_case_from_seed, extender_seeds,  # noqa: E402
                              generated_extender_cases, generated_scaler_cases, scaler_case_from_seed, scaler_seeds)
from tests.fuzz.doors import ErrorLog, GrpcClient, HttpClient, start_extender_door, start_scaler_door  # noqa: E402
from tests.fuzz.judges import Tally, expected_validity, judge_grpc, judge_http  # noqa: E402
from tests.fuzz.mutate import dumps  # noqa: E402


def _settings(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
                    suppress_health_check=list(HealthCheck), print_blob=False)


def drive(examples: int, generated_share: float, rng_seed: int, generated, from_seed, send, check,
          check_every: int) -> None:
    """`send` every case: `generated_share` of them drawn by hypothesis from the strategy
    `generated`, the rest built by `from_seed` from seeds of one `random.Random(rng_seed)`."""
    sent = 0

    started = time.perf_counter()

    def one(case) -> None:
        nonlocal sent
        send(case)
        sent += 1
        if sent % check_every == 0:
            check(sent)
        if sent % 10_000 == 0:
            print(f"  ... {sent} inputs, {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)

    n_generated = round(examples * generated_share)
    if n_generated:
        seed(rng_seed)(_settings(n_generated)(given(case=generated)(one)))()
    seeds = random.Random(rng_seed)
    for _ in range(examples - sent):
        one(from_seed(seeds.getrandbits(64)))
    check(sent)


def fuzz_extender(examples: int, generated_share: float, check_every: int,
                  rng_seed: int) -> tuple[Tally, ErrorLog, list[str]]:
    door = start_extender_door()
    client = HttpClient("127.0.0.1", door.port)
    tally, failed_checks = Tally(), []
    valid = HttpCase("POST", "/filter", dumps(extender_seeds()["filter"][0]), kind="liveness")

    def check(sent: int) -> None:
        status, body, transport = client.send(valid)
        if status != 200 or b'"Error":""' not in body:
            failed_checks.append(f"after {sent} inputs: {status} {transport} {body[:200]!r}")

    def send(case: HttpCase) -> None:
        status, body, transport = client.send(case)
        tally.add(case, judge_http(case, status, body, transport))

    try:
        with ErrorLog() as errors:
            drive(examples, generated_share, rng_seed, generated_extender_cases(), extender_case_from_seed, send,
                  check, check_every)
    finally:
        client.close()
        door.stop(2.0)
    tally.dropped = client.reconnects
    return tally, errors, failed_checks


def fuzz_scaler(examples: int, generated_share: float, check_every: int,
                rng_seed: int) -> tuple[Tally, ErrorLog, list[str]]:
    door = start_scaler_door()
    client = GrpcClient(door.grpc_port)
    tally, failed_checks = Tally(), []
    name, namespace, md = next(s for s in scaler_seeds() if s[2]["workload"] == "checkout-cams")
    valid = GrpcCase("GetMetrics", name, namespace, md, f"wattwise-{namespace}-checkout-cams", kind="liveness")

    def check(sent: int) -> None:
        code, details, reply = client.send(valid, True)
        if code.name != "OK" or judge_grpc(valid, True, code, details, reply).problems:
            failed_checks.append(f"after {sent} inputs: {code.name} {details[:200]!r}")

    def send(case: GrpcCase) -> None:
        ok, _ = expected_validity(case)
        code, details, reply = client.send(case, ok)
        tally.add(case, judge_grpc(case, ok, code, details, reply))

    try:
        with ErrorLog() as errors:
            drive(examples, generated_share, rng_seed, generated_scaler_cases(), scaler_case_from_seed, send,
                  check, check_every)
    finally:
        client.close()
        door.stop(1.0)
    return tally, errors, failed_checks


def report(door: str, tally: Tally, errors: ErrorLog, failed_checks: list[str], wall_s: float,
           messages_to: Path | None = None) -> bool:
    crashes = len(errors.records)
    print(f"\n== {door} ==")
    print(f"inputs run: {tally.inputs}  ({', '.join(f'{k} {n}' for k, n in tally.kinds.most_common())})")
    print(f"answers: {', '.join(f'{k} {n}' for k, n in sorted(tally.outcomes.items()))}")
    print(f"5xx / INTERNAL / UNKNOWN: {tally.server_errors}")
    print(f"dropped connections: {tally.dropped}")
    print(f"crashes (errors or tracebacks the servers logged): {crashes}")
    for line in errors.records[:5]:
        print(f"  {line}")
    print(f"inputs the judges found fault with: {tally.problem_count}")
    for problem, case in tally.problems[:10]:
        print(f"  {problem}\n    {case[:600]}")
    print(f"liveness checks failed: {len(failed_checks)}")
    for line in failed_checks[:5]:
        print(f"  {line}")
    print(f"distinct refusal messages: {len(tally.messages)}; the 10 most common:")
    for message, n in tally.messages.most_common(10):
        print(f"  {n:7d}  {message}")
    if messages_to is not None:
        with messages_to.open("a") as out:
            out.write(f"== {door}\n" + "".join(f"{n:7d}  {m}\n" for m, n in tally.messages.most_common()))
    print(f"wall time: {wall_s:.1f} s, {tally.inputs / wall_s:.0f} inputs/s")
    sys.stdout.flush()
    return not (tally.server_errors or tally.dropped or crashes or tally.problem_count or failed_checks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=100_000, help="inputs per door (default 100000)")
    parser.add_argument("--door", choices=("both", "extender", "scaler"), default="both")
    parser.add_argument("--generated-share", type=float, default=0.25,
                        help="share of inputs hypothesis generates from scratch (default 0.25; the rest: mutated)")
    parser.add_argument("--check-every", type=int, default=1000, help="a valid request every N inputs")
    parser.add_argument("--seed", type=int, default=15, help="hypothesis's seed (default 15)")
    parser.add_argument("--messages", type=Path, help="append every distinct refusal message, counted, to this file")
    args = parser.parse_args(argv)
    root = logging.getLogger()    # errors are counted (ErrorLog), the servers' lines per refusal not printed
    root.setLevel(logging.WARNING)
    root.addHandler(logging.NullHandler())
    ok = True
    print(f"fuzz: {args.examples} inputs per door, seed {args.seed}")
    for door, run in (("extender (HTTP)", fuzz_extender), ("scaler (gRPC)", fuzz_scaler)):
        if args.door not in ("both", door.split()[0]):
            continue
        started = time.perf_counter()
        tally, errors, failed = run(args.examples, args.generated_share, args.check_every, args.seed)
        ok &= report(door, tally, errors, failed, time.perf_counter() - started, args.messages)
    print("\nresult:", "OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
