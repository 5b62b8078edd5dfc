"""Triton rows: the fraud model with dynamic batching against the same model without, from several client processes."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tritonclient.grpc import InferInput, InferRequestedOutput
from tritonclient.grpc.aio import InferenceServerClient

from bench.fixtures import REPO
from bench.report import Row, latency_ms
from kestrel.devstack.triton import TritonServer
from kestrel.model.artifact import versions
from kestrel.model.triton_config import INPUT, OUTPUT, input_width

SOURCE = REPO / "infra" / "triton" / "models" / "kestrel_fraud"
ON, OFF = "kestrel_fraud_batched", "kestrel_fraud_unbatched"
GROUP = "triton"
PROCESSES = min(4, max(2, os.cpu_count() or 2))
"""Client processes at concurrency >= 16: more than the cores only steals CPU from the server here."""


def off_name(concurrency: int) -> str:
    return f"Triton batching off, concurrency {concurrency}"


def on_name(concurrency: int) -> str:
    return f"Triton dynamic batching, concurrency {concurrency}"


@dataclass(frozen=True)
class Phase:
    model: str
    concurrency: int
    rows: int = 1
    processes: int = PROCESSES


def prepare_repository(target: Path) -> int:
    """Two copies of the shipped model: its own config (batching on) and the same without dynamic_batching."""
    config = (SOURCE / "config.pbtxt").read_text()
    latest = SOURCE / str(max(versions(SOURCE.parent, SOURCE.name)))
    for name, text in ((ON, config), (OFF, re.sub(r"dynamic_batching\s*\{[^}]*\}", "", config))):
        shutil.copytree(latest, target / name / "1", ignore=shutil.ignore_patterns("reference.*", "__pycache__"))
        (target / name / "config.pbtxt").write_text(text.replace('name: "kestrel_fraud"', f'name: "{name}"'))
    return input_width(config)


async def run(bootstrap: str, workdir: Path, quick: bool) -> list[Row]:
    """bootstrap is unused: Triton needs no broker."""
    duration = 3.0 if quick else 8.0
    repo = workdir / "triton-bench-models"
    width = prepare_repository(repo)
    phases = [Phase(m, c, processes=min(PROCESSES, c)) for c in (1, 16, 64) for m in (OFF, ON)]
    phases += [Phase(m, 8, rows=256) for m in (OFF, ON)]
    async with TritonServer(workdir / "triton-bench", repo, load_models=[ON, OFF]) as server:
        # spawn: a forked child would inherit the parent's event loop and gRPC state.
        with multiprocessing.get_context("spawn").Pool(PROCESSES) as pool:
            measure = Measure(server, pool, width, duration)
            results = {(p.model, p.concurrency, p.rows): await measure(p) for p in phases}
    return _rows(results)


def _rows(results: dict[tuple[str, int, int], Result]) -> list[Row]:
    rows = []
    for (model, concurrency, n), result in results.items():
        if n == 1:
            name = (on_name if model == ON else off_name)(concurrency)
            rows.append(result.row(name, off_name(64) if model == ON and concurrency == 64 else None))
    off1, on1 = results[(OFF, 1, 1)], results[(ON, 1, 1)]
    rows.append(
        Row(
            GROUP,
            "Triton batcher added p50, concurrency 1",
            None,
            on1.p50 - off1.p50,
            notes=f"batching on {on1.p50:.2f} ms minus off {off1.p50:.2f} ms (p50, same run)",
        )
    )
    off_us, on_us = (results[(m, 64, 1)].server["infer_us_per_request"] for m in (OFF, ON))
    rows.append(
        Row(
            GROUP,
            "Triton compute per request, concurrency 64",
            None,
            notes=f"batching off {off_us:.0f} us, on {on_us:.0f} us: {off_us / on_us:.1f}x less server "
            f"time per inference (Triton statistics)",
            extra={"off_us": off_us, "on_us": on_us},
        )
    )
    for model, label in ((OFF, "batching off"), (ON, "dynamic batching")):
        rows.append(results[(model, 8, 256)].row(f"Triton {label}, 256 rows/request, concurrency 8", off_name(64)))
    return rows


@dataclass
class Result:
    phase: Phase
    requests: int
    elapsed: float
    p50: float
    p99: float
    server: dict[str, float]

    def row(self, name: str, baseline: str | None) -> Row:
        p = self.phase
        s = self.server
        notes = (
            f"{p.rows} row(s)/request, {p.processes} client process(es); Triton: "
            f"{s['requests_per_execution']:.1f} requests/execution, queue {s['queue_us_per_request']:.0f} us"
            f"/request, compute {s['infer_us_per_execution']:.0f} us/execution = "
            f"{s['infer_us_per_request']:.0f} us/request ({s['infer_us_per_row']:.1f} us/row)"
        )
        return Row(
            GROUP,
            name,
            self.requests * p.rows / self.elapsed,
            self.p50,
            self.p99,
            baseline=baseline,
            notes=notes,
            extra=self.server,
        )


class Measure:
    def __init__(self, server: TritonServer, pool: Any, width: int, duration: float) -> None:
        self.server, self.pool, self.width, self.duration = server, pool, width, duration

    async def __call__(self, phase: Phase) -> Result:
        before = await self.server.model_stats(phase.model)
        start_at = time.time() + 1.0  # every process connected and warmed up before the clock starts
        jobs = [
            (self.server.grpc_url, phase.model, self.width, phase.rows, share(phase, i), start_at, self.duration, i)
            for i in range(phase.processes)
        ]
        parts = await asyncio.to_thread(self.pool.map, _client, jobs)
        after = await self.server.model_stats(phase.model)
        latencies = [s for samples, _ in parts for s in samples]
        p50, p99 = latency_ms(latencies)
        return Result(phase, len(latencies), max(e for _, e in parts), p50, p99, server_time(before, after))


def share(phase: Phase, i: int) -> int:
    """In-flight requests of client process i: the concurrency spread evenly."""
    return phase.concurrency // phase.processes + (1 if i < phase.concurrency % phase.processes else 0)


def server_time(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float]:
    """Triton's own accounting between two statistics snapshots.

    inference_stats add each request's wait and its execution's duration per request, so an execution
    of 8 requests counts 8 times there; batch_stats count each execution once, which is what
    "server-side time per inference" needs.
    """
    b, a = before["model_stats"][0], after["model_stats"][0]
    executions, infer_ns = _executions(a["batch_stats"], b["batch_stats"])
    rows = a["inference_count"] - b["inference_count"]  # rows, for a batching model
    requests = a["inference_stats"]["success"]["count"] - b["inference_stats"]["success"]["count"]
    queue_ns = a["inference_stats"]["queue"]["ns"] - b["inference_stats"]["queue"]["ns"]
    return {
        "rows_per_execution": rows / max(executions, 1),
        "requests_per_execution": requests / max(executions, 1),
        "queue_us_per_request": queue_ns / max(requests, 1) / 1000,
        "infer_us_per_execution": infer_ns / max(executions, 1) / 1000,
        "infer_us_per_request": infer_ns / max(requests, 1) / 1000,
        "infer_us_per_row": infer_ns / max(rows, 1) / 1000,
    }


def _executions(after: list[dict[str, Any]], before: list[dict[str, Any]]) -> tuple[int, int]:
    """Executions and their compute_infer nanoseconds between two batch_stats snapshots."""

    def totals(stats: list[dict[str, Any]]) -> tuple[int, int]:
        return (sum(int(s["compute_infer"]["count"]) for s in stats), sum(int(s["compute_infer"]["ns"]) for s in stats))

    (count_a, ns_a), (count_b, ns_b) = totals(after), totals(before)
    return count_a - count_b, ns_a - ns_b


def _client(job: tuple[str, str, int, int, int, float, float, int]) -> tuple[list[float], float]:
    """One client process: `inflight` concurrent requests for `duration` seconds from `start_at` (wall clock)."""
    return asyncio.run(_client_loop(*job))


async def _client_loop(
    url: str, model: str, width: int, rows: int, inflight: int, start_at: float, duration: float, seed: int
) -> tuple[list[float], float]:
    client = InferenceServerClient(url)
    x = np.random.default_rng(seed).gamma(2.0, 20.0, size=(rows, width)).astype(np.float32)
    inputs = [InferInput(INPUT, list(x.shape), "FP32")]
    inputs[0].set_data_from_numpy(x)
    outputs = [InferRequestedOutput(OUTPUT)]
    for _ in range(20):  # connection set up and both sides warm
        await client.infer(model, inputs, outputs=outputs)
    await asyncio.sleep(max(0.0, start_at - time.time()))
    start = time.perf_counter()
    deadline = start + duration
    samples: list[float] = []

    async def worker() -> None:
        while (begin := time.perf_counter()) < deadline:
            await client.infer(model, inputs, outputs=outputs)
            samples.append(time.perf_counter() - begin)

    await asyncio.gather(*(worker() for _ in range(inflight)))
    elapsed = time.perf_counter() - start
    await client.close()
    return samples, elapsed
