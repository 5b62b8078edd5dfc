"""`python -m bench [--quick] [--only ingest]`: run benchmarks, print the table, write JSON."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
from pathlib import Path

from bench import (
    alerting,
    drift,
    feature_writer,
    features,
    inference,
    ingest,
    loop,
    pipeline,
    prediction_logger,
    triton,
)
from bench.fixtures import REPO, kafka_broker
from bench.report import attach_ratios, machine, render, write_json

SUITES = {
    "ingest": ingest.run,
    "features": features.run,
    "feature-writer": feature_writer.run,
    "triton": triton.run,
    "inference": inference.run,
    "prediction-logger": prediction_logger.run,
    "alerting": alerting.run,
    "drift": drift.run,
    "pipeline": pipeline.run,
    "loop": loop.run,
}
WITHOUT_BROKER = {"drift", "pipeline", "loop"}
"""Suites that need no shared broker (pipeline and loop start a whole stack of their own)."""


async def main(args: argparse.Namespace) -> None:
    rows, names = [], args.only or list(SUITES)
    with tempfile.TemporaryDirectory(prefix="kestrel-bench-") as tmp:
        async with contextlib.AsyncExitStack() as stack:
            needs_broker = not set(names) <= WITHOUT_BROKER
            bootstrap = await stack.enter_async_context(kafka_broker(Path(tmp))) if needs_broker else ""
            for name in names:
                rows += await SUITES[name](bootstrap, Path(tmp), args.quick)
    attach_ratios(rows)
    pipeline.against_parts(rows)
    print(f"\nKestrel bench on {machine()}\n")
    print(render(rows))
    print(f"\nJSON: {write_json(rows, REPO / 'bench' / 'results')}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller runs (CI smoke)")
    parser.add_argument("--only", action="append", choices=sorted(SUITES))
    asyncio.run(main(parser.parse_args()))
