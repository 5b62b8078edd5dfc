"""Coalescer: concurrent unary calls share batches; a failed batch fails only its own callers."""

from __future__ import annotations

import asyncio

import pytest
import structlog
from structlog.contextvars import bound_contextvars, merge_contextvars
from structlog.testing import capture_logs

from kestrel.common.admission import Admission
from kestrel.common.errors import OverloadedError
from kestrel.common.validation import Limits
from kestrel.inference.coalescer import Coalescer
from kestrel.inference.core import Item, Prediction
from kestrel.inference.servicer import InferenceServicer

from .support import event, now_ms, request


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


class HeldScorer:
    """Answers every item with a prediction once released."""

    def __init__(self):
        self.release = asyncio.Event()
        self.batches: list[int] = []

    async def score(self, items):
        self.batches.append(len(items))
        await self.release.wait()
        return [
            Prediction(i.request_id, i.entity_id, i.record["event_id"], 0, 0.1, False, 0.5, "m", "1", "v", [], 0, [])
            for i in items
        ]


async def test_predict_past_the_door_limit_is_refused_at_once_with_retry_advice():
    scorer = HeldScorer()
    door = Admission("inference", limit=2, retry_after_ms=100)
    coalescer = Coalescer(scorer, max_rows=8)  # type: ignore[arg-type]
    servicer = InferenceServicer(scorer, coalescer, Limits(), door, max_batch=16, stream_window=8)  # type: ignore[arg-type]

    async def predict(i: int):
        return await servicer.Predict(request(event(f"card-{i}", now_ms(), 10.0), request_id=str(i)), None)  # type: ignore[arg-type]

    held = [asyncio.create_task(predict(i)) for i in range(2)]
    await asyncio.sleep(0.05)
    assert door.in_flight == 2
    with pytest.raises(OverloadedError) as refused:
        await predict(2)
    assert refused.value.retry_after_ms == 100 and "inference at capacity" in str(refused.value)
    scorer.release.set()
    answers = await asyncio.gather(*held)
    assert [a.prediction_id for a in answers] == ["0", "1"] and door.in_flight == 0
    assert scorer.batches == [1, 1] or scorer.batches == [2]  # the refused request never reached the scorer
