"""Coalescer: concurrent unary calls share batches; a failed batch fails only its own callers."""

from __future__ import annotations

import asyncio

import structlog
from structlog.contextvars import bound_contextvars, merge_contextvars
from structlog.testing import capture_logs

from kestrel.inference.coalescer import Coalescer
from kestrel.inference.core import Item


class SlowScorer:
    def __init__(self):
        self.batches: list[int] = []

    async def score(self, items):
        self.batches.append(len(items))
        await asyncio.sleep(0.01)
        if any(i.entity_id == "boom" for i in items):
            raise RuntimeError("triton exploded")
        return [f"p-{i.request_id}" for i in items]


async def test_concurrent_calls_share_batches_and_a_lone_call_goes_at_once():
    scorer = SlowScorer()
    coalescer = Coalescer(scorer, max_rows=32, max_in_flight=2)  # type: ignore[arg-type]
    assert await coalescer.submit(Item("a", {}, "solo")) == "p-solo"
    assert scorer.batches == [1]
    results = await asyncio.gather(*(coalescer.submit(Item("a", {}, str(i))) for i in range(100)))
    assert results == [f"p-{i}" for i in range(100)]
    assert sum(scorer.batches) == 101 and max(scorer.batches) <= 32 and len(scorer.batches) <= 8


async def test_a_failed_batch_fails_its_callers_only():
    scorer = SlowScorer()
    coalescer = Coalescer(scorer, max_rows=4, max_in_flight=1)  # type: ignore[arg-type]
    calls = [coalescer.submit(Item("boom" if i == 5 else "a", {}, str(i))) for i in range(12)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    failed = [i for i, r in enumerate(results) if isinstance(r, Exception)]
    assert 5 in failed and len(failed) <= 4 and results[0] == "p-0" and results[11] == "p-11"


async def test_a_shared_batch_does_not_log_under_the_request_id_of_the_caller_that_started_it():
    class LoggingScorer(SlowScorer):
        async def score(self, items):
            structlog.get_logger().info("batch", rows=len(items))
            return await super().score(items)

    coalescer = Coalescer(LoggingScorer(), max_rows=8)  # type: ignore[arg-type]

    async def call(i):
        with bound_contextvars(request_id=f"r-{i}"):
            return await coalescer.submit(Item("a", {}, str(i)))

    with capture_logs(processors=[merge_contextvars]) as logs:
        await asyncio.gather(*(call(i) for i in range(5)))
    assert logs and all("request_id" not in line for line in logs)
