"""Pure parts of the Predict core: request validation and the coalescing of concurrent calls."""

from __future__ import annotations

import asyncio

import pytest

from kestrel.api.v1 import inference_pb2
from kestrel.common.errors import InvalidArgumentError
from kestrel.common.validation import Limits
from kestrel.inference.scoring import Coalescer, Item, parse

from .support import event, now_ms, request


def test_parse_defaults_the_entity_to_the_events_and_keeps_an_explicit_one():
    t = now_ms()
    items = parse([request(event("card-1", t, 5.0)), request(event("card-1", t, 5.0), entity_id="acct-9")], Limits(), t)
    assert [i.entity_id for i in items] == ["card-1", "acct-9"]
    assert items[0].record["amount"] == 5.0 and items[0].record["event_time"] == t


def test_parse_names_every_bad_field_with_its_index():
    t = now_ms()
    requests = [request(event("card-1", t, 5.0)), inference_pb2.PredictRequest(),
                request(dict(event("card-1", t, 5.0), currency="euro")),
                request(event("card-1", t, 5.0), entity_id="has space")]
    with pytest.raises(InvalidArgumentError) as info:
        parse(requests, Limits(), t, lambda i: f"requests[{i}].")
    fields = [f for f, _ in info.value.violations]
    assert fields == ["requests[1].event", "requests[2].event.currency", "requests[3].entity_id"]


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


def test_stream_prediction_ids_are_uuid5_of_event_model_and_version():
    import uuid

    from kestrel.inference.stream import _IDS, stream_prediction_id

    namespace = uuid.UUID(bytes=_IDS)
    for event_id in ("e-1", "x" * 200, "é-ü"):
        assert stream_prediction_id(event_id, "kestrel_fraud", "3") == uuid.uuid5(
            namespace, f"{event_id}\x00kestrel_fraud\x003").hex
    assert stream_prediction_id("e-1", "kestrel_fraud", "3") != stream_prediction_id("e-1", "kestrel_fraud", "4")
