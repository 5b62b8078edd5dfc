"""`python -m bench [--quick] [--only ingest] [--profile]`: run benchmarks, print the table, write JSON.

--profile records a py-spy profile of the services that suites with a hot path run (the stream scorer:
`--only stream-scorer`; the Predict path: `--only predict`; the features worker: `--only features`), writes it
under bench/results/profiles/ and prints its top frames."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import tempfile
import time
from collections.abc import Awaitable, Callable
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
    predict,
    prediction_logger,
    triton,
)
from bench.fixtures import REPO, kafka_broker
from bench.profile import render_top
from bench.report import Row, attach_ratios, machine, render, write_json

PROFILES = REPO / "bench" / "results" / "profiles"
SUITES = {
    "ingest": ingest.run,
    "features": features.run,
    "feature-writer": feature_writer.run,
    "triton": triton.run,
    "inference": inference.run,
    "stream-scorer": inference.run_stream,
    "predict": predict.run,
    "prediction-logger": prediction_logger.run,
    "alerting": alerting.run,
    "drift": drift.run,
    "pipeline": pipeline.run,
    "loop": loop.run,
}
WITHOUT_BROKER = {"drift", "pipeline", "loop"}
"""Suites that need no shared broker (pipeline and loop start a whole stack of their own)."""
PROFILED = {
    "stream-scorer": "stream scorer",
    "predict": "Predict API (concurrency 64; -batch: PredictBatch)",
    "features": "features worker",
}
"""Suites that take a profile path, and what their profile is of."""
NAMED_ONLY = {"stream-scorer", "predict"}
"""Suites that run only when named: the whole bench already holds their rows (the stream scorer's and
Predict's are part of the inference suite)."""


async def main(args: argparse.Namespace) -> None:
    rows, names = [], args.only or [name for name in SUITES if name not in NAMED_ONLY]
    profiles: dict[str, Path] = {}
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    with tempfile.TemporaryDirectory(prefix="kestrel-bench-") as tmp:
        async with contextlib.AsyncExitStack() as stack:
            needs_broker = not set(names) <= WITHOUT_BROKER
            bootstrap = await stack.enter_async_context(kafka_broker(Path(tmp))) if needs_broker else ""
            for name in names:
                run: Callable[..., Awaitable[list[Row]]] = SUITES[name]
                if args.profile and name in PROFILED:
                    profiles[name] = PROFILES / f"{name}-{stamp}.txt"
                    run = functools.partial(run, profile=profiles[name])
                rows += await run(bootstrap, Path(tmp), args.quick)
    attach_ratios(rows)
    pipeline.against_parts(rows)
    print(f"\nKestrel bench on {machine()}\n")
    print(render(rows))
    for name, path in profiles.items():
        for each in sorted(path.parent.glob(f"{path.stem}*.txt")):  # a suite may record more than one phase
            print(f"\n{render_top(PROFILED[name] + each.stem.removeprefix(path.stem), each)}")
    print(f"\nJSON: {write_json(rows, REPO / 'bench' / 'results')}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller runs (CI smoke)")
    parser.add_argument("--only", action="append", choices=sorted(SUITES))
    parser.add_argument("--profile", action="store_true", help=f"py-spy profiles of: {', '.join(PROFILED)}")
    asyncio.run(main(parser.parse_args()))
