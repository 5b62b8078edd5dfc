"""kestrel-sim: command line for the traffic simulator."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from kestrel.common.errors import KestrelError
from kestrel.common.logs import configure_logging
from kestrel.common.settings import load_settings
from kestrel.simulator.fraud import PATTERNS
from kestrel.simulator.generator import GeneratorConfig
from kestrel.simulator.runner import RunConfig, run
from kestrel.simulator.scenarios import SCENARIOS
from kestrel.simulator.settings import SimulatorSettings
from kestrel.simulator.summary import Summary

EPILOG = (
    "scenarios:\n"
    + "\n".join(f"  {name:<18} {text}" for name, (text, _) in SCENARIOS.items())
    + """

connection settings come from the environment: KESTREL_SIM_KAFKA_BOOTSTRAP (or KESTREL_KAFKA_BOOTSTRAP),
KESTREL_SIM_INGEST_ADDR, KESTREL_SIM_INGEST_TOKEN, KESTREL_SIM_TOPIC_PREFIX, ... (see docs/simulator.md)"""
)


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _delay(value: str) -> tuple[float, float]:
    lo, _, hi = value.partition(",")
    return float(lo), float(hi or lo)


def _start(value: str) -> int:
    """Epoch milliseconds, or an ISO 8601 date/time (UTC unless it says otherwise)."""
    if value.isdigit():
        return int(value)
    moment = datetime.fromisoformat(value)
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp() * 1000)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kestrel-sim",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Generate realistic card-payment traffic with fraud, late labels and drift.",
    )
    out = p.add_argument_group("where and how fast")
    out.add_argument(
        "--to",
        choices=["kafka", "ingest", "null", "jsonl"],
        default="kafka",
        help="kafka: Avro straight to the topics; ingest: gRPC PublishBatch (labels still go to "
        "Kafka); null: generate only; jsonl: JSON lines to --output (default kafka)",
    )
    out.add_argument("--rate", type=float, default=1000.0, help="target events/s, 0 = as fast as possible (1000)")
    out.add_argument("--duration", type=float, help="stop after this many seconds")
    out.add_argument("--count", type=int, help="stop after this many events")
    out.add_argument("--ingest-addr", help="ingest host:port (default KESTREL_SIM_INGEST_ADDR or 127.0.0.1:50051)")
    out.add_argument("--output", help="--to jsonl: file to write (default stdout)")
    out.add_argument("--progress", choices=["auto", "tty", "log", "off"], default="auto")
    world = p.add_argument_group("the simulated world")
    world.add_argument("--cards", type=int, default=10_000, help="card population (10000)")
    world.add_argument("--seed", type=int, default=0, help="random seed: same seed, same traffic (0)")
    world.add_argument("--run-id", help="prefix of every event_id (default random, so reruns never collide)")
    world.add_argument(
        "--card-prefix", default="card-", help="prefix of card ids: give parallel simulators distinct cards (card-)"
    )
    world.add_argument(
        "--clock",
        choices=["wall", "sim"],
        default="wall",
        help="wall: events happen now; sim: simulated time at the cards' natural pace (wall)",
    )
    world.add_argument(
        "--start",
        type=_start,
        help="--clock sim: first event time, ISO 8601 or epoch ms (default: so that the run ends about now)",
    )
    world.add_argument("--sim-rate", type=float, help="--clock sim: events per simulated second")
    fraud = p.add_argument_group("fraud, labels, bad input")
    fraud.add_argument("--fraud-rate", type=float, default=0.01, help="share of events that are fraud (0.01)")
    fraud.add_argument(
        "--fraud-patterns", type=_csv, default=tuple(PATTERNS), help=f"comma-separated subset of {','.join(PATTERNS)}"
    )
    fraud.add_argument(
        "--leak-pattern",
        action="store_true",
        help="write the fraud pattern into attributes[sim_pattern] (debugging only: leaks labels)",
    )
    fraud.add_argument(
        "--label-delay",
        type=_delay,
        default=(1.0, 30.0),
        metavar="MIN,MAX",
        help="label delay range in seconds of event time (1,30)",
    )
    fraud.add_argument(
        "--label-share",
        type=float,
        default=1.0,
        help="share of legitimate events labelled; fraud is always labelled (1.0)",
    )
    fraud.add_argument("--no-labels", action="store_true", help="send no labels")
    fraud.add_argument(
        "--no-drain-labels",
        action="store_true",
        help="at the end, drop labels still waiting for their delay instead of sending them",
    )
    fraud.add_argument(
        "--invalid-rate",
        type=float,
        default=0.0,
        help="share of events deliberately invalid, to exercise rejections and dead letters (0)",
    )
    drift = p.add_argument_group("drift")
    drift.add_argument("--scenario", choices=list(SCENARIOS), default="none")
    drift.add_argument("--drift-at", type=float, default=0.0, help="seconds of event time before drift starts (0)")
    drift.add_argument("--drift-ramp", type=float, default=0.0, help="seconds over which the drift ramps in (0)")
    return p


def config_from_args(args: argparse.Namespace, settings: SimulatorSettings) -> RunConfig:
    kwargs = {"run_id": args.run_id} if args.run_id else {}
    generator = GeneratorConfig(
        cards=args.cards,
        seed=args.seed,
        fraud_rate=args.fraud_rate,
        fraud_patterns=args.fraud_patterns,
        leak_pattern=args.leak_pattern,
        invalid_rate=args.invalid_rate,
        label_share=args.label_share,
        label_delay_s=args.label_delay,
        scenario=args.scenario,
        drift_at_s=args.drift_at,
        drift_ramp_s=args.drift_ramp,
        card_prefix=args.card_prefix,
        **kwargs,
    )
    return RunConfig(
        generator=generator,
        to=args.to,
        rate=args.rate,
        duration_s=args.duration,
        count=args.count,
        clock=args.clock,
        start_ms=args.start,
        sim_rate=args.sim_rate,
        labels=not args.no_labels,
        drain_labels=not args.no_drain_labels,
        progress=args.progress,
        ingest_addr=args.ingest_addr,
        output=args.output,
        settings=settings,
    )


async def _run_until_signalled(config: RunConfig) -> Summary:
    """SIGINT/SIGTERM end the run gracefully: pending acks and labels are still delivered."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return await run(config, stop)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = load_settings(SimulatorSettings)
    configure_logging("simulator", settings.log_format, settings.log_level)
    try:
        config = config_from_args(args, settings)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        summary = asyncio.run(_run_until_signalled(config))
    except KestrelError as exc:
        print(f"kestrel-sim: {exc}", file=sys.stderr)
        return 1
    return 1 if summary.failed or summary.labels_failed else 0


if __name__ == "__main__":
    sys.exit(main())
