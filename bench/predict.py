"""`--only predict [--profile]`: the Predict path alone, for working on it: direct Triton, Predict and the gRPC
floor at the bar's concurrencies (1 and 64) and PredictBatch, each Predict phase with the API process's CPU
time per event; with --profile, py-spy samples the API through the concurrency-64 Predict phase, and through
the PredictBatch phase into a second file (`-batch`)."""

from __future__ import annotations

import contextlib
from pathlib import Path

from bench.fixtures import fresh_catalogue
from bench.inference import (
    BATCH_CALL,
    BATCH_INFLIGHT,
    DIRECT_BATCH,
    MODEL,
    NOISE,
    PredictMeasure,
    PredictResult,
    Service,
    cpu_seconds,
    direct_name,
    direct_row,
    floor_process,
    floor_row,
    inference_process,
    predict_name,
    predict_row,
    servers,
    wait_serving,
)
from bench.profile import recording
from bench.report import Row
from bench.triton import PROCESSES, Phase

PROFILED_AT = 64
"""The concurrency whose Predict phase --profile records (the throughput bar's)."""


async def measured(
    predict: PredictMeasure, service: Service, concurrency: int, per_call: int = 1, profile: Path | None = None
) -> tuple[PredictResult, float]:
    """A Predict phase and the service process's CPU time per event over it (us; includes the phase's warm-up
    calls, a few dozen against thousands)."""
    before = cpu_seconds(service.proc.pid)
    with recording(service.proc.pid, profile) if profile is not None else contextlib.nullcontext():
        result = await predict(service, concurrency, per_call)
    cpu = cpu_seconds(service.proc.pid) - before
    return result, cpu * 1e6 / max(result.calls * per_call, 1)


def with_cpu(row: Row, cpu_us: float, who: str = "API") -> Row:
    row.notes += f"; {who} CPU {cpu_us:.0f} us/event"
    row.extra["cpu_us_per_event"] = cpu_us
    return row


async def run(bootstrap: str, workdir: Path, quick: bool, profile: Path | None = None) -> list[Row]:
    async with servers(workdir, 20_000 if quick else 50_000, 2.0 if quick else 6.0, name="predict") as bench:
        direct, predict, triton, redis = bench.direct, bench.predict, bench.triton, bench.redis
        prefix = await fresh_catalogue(bootstrap)
        api = ("kestrel-inference", bootstrap, prefix, redis.url, triton.grpc_url, workdir / "predict-api.log")
        rows: list[Row] = []
        with inference_process(*api) as service, floor_process(workdir / "predict-floor.log") as floor:
            await wait_serving(service)
            await wait_serving(floor)
            for c in (1, PROFILED_AT):
                rows.append(direct_row(direct_name(c), await direct(Phase(MODEL, c, processes=min(PROCESSES, c)))))
                result, cpu_us = await measured(predict, service, c, profile=profile if c == PROFILED_AT else None)
                rows.append(with_cpu(predict_row(predict_name(c), result, direct_name(c)), cpu_us))
                floor_result, floor_cpu = await measured(predict, floor, c)
                rows.append(with_cpu(floor_row(c, floor_result), floor_cpu, "floor"))
            rows.append(direct_row(DIRECT_BATCH, await direct(Phase(MODEL, BATCH_INFLIGHT, rows=BATCH_CALL))))
            batch_profile = profile.with_name(f"{profile.stem}-batch.txt") if profile is not None else None
            batch, cpu_us = await measured(predict, service, BATCH_INFLIGHT, BATCH_CALL, batch_profile)
            name = f"gRPC PredictBatch, {BATCH_CALL} events/call, {BATCH_INFLIGHT} calls in flight"
            rows.append(with_cpu(predict_row(name, batch, DIRECT_BATCH, log=service.log_summary()), cpu_us))
    for row in rows:
        row.notes += f"; {NOISE}"
    return rows
