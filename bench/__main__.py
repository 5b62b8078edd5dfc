"""`python -m bench [--quick] [--only ingest]`: run benchmarks, print the table, write JSON."""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from bench import alerting, feature_writer, features, inference, ingest, prediction_logger, triton
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
}


async def main(args: argparse.Namespace) -> None:
    rows = []
    with tempfile.TemporaryDirectory(prefix="kestrel-bench-") as tmp:
        async with kafka_broker(Path(tmp)) as bootstrap:
            for name in args.only or list(SUITES):
                rows += await SUITES[name](bootstrap, Path(tmp), args.quick)
    attach_ratios(rows)
    print(f"\nKestrel bench on {machine()}\n")
    print(render(rows))
    print(f"\nJSON: {write_json(rows, REPO / 'bench' / 'results')}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller runs (CI smoke)")
    parser.add_argument("--only", action="append", choices=sorted(SUITES))
    asyncio.run(main(parser.parse_args()))
