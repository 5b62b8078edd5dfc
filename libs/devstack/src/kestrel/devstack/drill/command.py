"""`kestrel-stack drill` (and `python -m kestrel.devstack.drill`): its options, the run, the table, the verdict."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from kestrel.common.logs import configure_logging
from kestrel.devstack.drill.options import Options
from kestrel.devstack.paths import default_state_dir

HELP = (
    "run traffic through the local stack (a running `kestrel-stack up`, else one started for the drill), "
    "inject a seeded schedule of faults, wait for the lag to drain, read every topic and store back and print "
    "what was lost or duplicated; exits 1 when a promise broke"
)
FAULTS_HELP = (
    "comma-separated faults: kill:SERVICE[*N] SIGKILLs a service's process N times (the supervisor restarts it); "
    "kill:all*N every service N times; stop:DEPENDENCY[*N][/SECONDS] stops kafka, redis, postgres or triton for "
    "SECONDS (default 30) and starts it again (only on the drill's own stack) (default: %(default)s)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=1, help="orders and times the faults and makes the events")
    parser.add_argument("--rate", type=int, default=Options.rate, help="events/s through ingest")
    parser.add_argument("--duration", type=float, default=Options.duration_s, help="seconds of traffic")
    parser.add_argument("--faults", default=Options.faults, help=FAULTS_HELP)
    parser.add_argument("--cards", type=int, default=Options.cards, help="distinct cards the events use")
    parser.add_argument("--drain", type=float, default=Options.drain_s, help="longest wait for the lag to drain")
    parser.add_argument(
        "--services",
        default="",
        help="comma-separated services to run when the drill starts its own stack (default: all)",
    )


async def handle(args: argparse.Namespace) -> int:
    options = Options(
        seed=args.seed,
        rate=args.rate,
        duration_s=args.duration,
        faults=args.faults,
        cards=args.cards,
        drain_s=args.drain,
        services=tuple(s for s in args.services.split(",") if s),
    )
    from kestrel.devstack.drill.report import render
    from kestrel.devstack.drill.runner import run  # imported on use: it pulls in the simulator and the stores

    try:
        report = await run(options, Path(args.state_dir))
    except ValueError as exc:
        print(f"kestrel-stack drill: {exc}", file=sys.stderr)
        return 2
    print(render(report), flush=True)
    return 1 if report.problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kestrel.devstack.drill", description=HELP)
    parser.add_argument("--state-dir", help="the stack's state (default: $KESTREL_STACK_DIR or <repo>/.kestrel/stack)")
    parser.add_argument("--log-level", default="INFO")
    add_arguments(parser)
    args = parser.parse_args(argv)
    configure_logging("kestrel-drill", fmt="console", level=args.log_level)
    args.state_dir = Path(args.state_dir or os.environ.get("KESTREL_STACK_DIR") or default_state_dir()).absolute()
    return asyncio.run(handle(args))
