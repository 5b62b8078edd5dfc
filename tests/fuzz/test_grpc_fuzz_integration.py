"""Bad input through gRPC: every fuzzed call to ingest and inference gets OK or a clear error naming the field,
never UNKNOWN or INTERNAL, and the server still answers a valid request afterwards."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
from hypothesis import strategies as st

from kestrel.api.v1 import event_pb2, inference_pb2, inference_pb2_grpc, ingest_pb2, ingest_pb2_grpc
from kestrel.common.convert import record_to_event
from kestrel.common.grpc.server import GrpcServer

from .judge import judge_error, judge_items
from .sample import draw, share
from .servers import MODEL, inference_api, ingest_app
from .strategies import events, predict_requests, undecodable_messages, valid_event
from .tally import Outcome, Tally

pytestmark = pytest.mark.integration

CONCURRENCY = 16
TIMEOUT_S = 30


@pytest.fixture
async def ingest_channel(kafka) -> AsyncIterator[grpc.aio.Channel]:
    app, _ = await ingest_app(kafka.bootstrap)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.part(GrpcServer).port}") as channel:
        yield channel
    await app.stop()


@pytest.fixture
async def inference_channel(kafka, redis_server, triton) -> AsyncIterator[grpc.aio.Channel]:
    await triton.ensure_loaded(MODEL)
    app, _ = await inference_api(kafka.bootstrap, redis_server.url, triton.grpc_url)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.part(GrpcServer).port}") as channel:
        yield channel
    await app.stop()


async def run_target(target: str, inputs: list[Any], call: Callable[[Any], Awaitable[tuple[Outcome, str]]]) -> Tally:
    """Sends every input (a few at a time), judges each answer; an exception in the client is unclear too."""
    tally, gate = Tally(target), asyncio.Semaphore(CONCURRENCY)

    async def one(item: Any) -> None:
        async with gate:
            try:
                outcome, detail = await call(item)
            except grpc.aio.AioRpcError as exc:
                outcome, detail = judge_error(exc)
            tally.add(outcome, f"{detail} <- {str(item)[:2000]!r}" if outcome is Outcome.UNCLEAR else "")

    await asyncio.gather(*(one(i) for i in inputs))
    tally.save()
    return tally


def assert_clear(tally: Tally) -> None:
    assert tally.counts[Outcome.UNCLEAR] == 0, f"{tally.target}: {tally.unclear[:5]}"


async def ok(_: Any) -> tuple[Outcome, str]:
    return Outcome.OK, ""


async def call_raw(channel: grpc.aio.Channel, method: str, shape: str, body: bytes) -> tuple[Outcome, str]:
    """A method called with bytes as they are: no client-side serialization stands in their way."""
    path = f"/kestrel.api.v1.{method}"
    if shape == "unary":
        await channel.unary_unary(path)(body, timeout=TIMEOUT_S)
    elif shape == "stream_unary":
        await channel.stream_unary(path)(iter([body]), timeout=TIMEOUT_S)
    else:
        _ = [answer async for answer in channel.stream_stream(path)(iter([body]), timeout=TIMEOUT_S)]
    return Outcome.OK, ""


async def written_stream(call: Any, requests: list[Any]) -> list[Any]:
    """A bidirectional stream in lockstep: write one request, read its answer. The server ends the stream at a bad
    request; a client still writing then fails its write locally and reports that (grpc-python: INTERNAL
    'Internal error from Core') instead of the server's status, so this client never writes ahead."""
    answers = []
    for request in requests:
        await call.write(request)
        answers.append(await call.read())
    await call.done_writing()
    assert await call.read() is grpc.aio.EOF
    return answers


async def test_ingest_answers_bad_input_clearly_and_keeps_serving(ingest_channel) -> None:
    stub = ingest_pb2_grpc.IngestServiceStub(ingest_channel)
    batches = st.lists(events(), min_size=1, max_size=5)

    async def publish(event: event_pb2.Event) -> tuple[Outcome, str]:
        await stub.Publish(ingest_pb2.PublishRequest(event=event), timeout=TIMEOUT_S)
        return Outcome.OK, ""

    async def batch(items: list[event_pb2.Event]) -> tuple[Outcome, str]:
        reply = await stub.PublishBatch(ingest_pb2.PublishBatchRequest(events=items), timeout=TIMEOUT_S)
        return judge_items(reply, len(items))

    async def stream(items: list[event_pb2.Event]) -> tuple[Outcome, str]:
        reply = await stub.PublishStream(iter([ingest_pb2.PublishRequest(event=e) for e in items]), timeout=TIMEOUT_S)
        return judge_items(reply, len(items))

    methods = st.sampled_from(
        [
            ("IngestService/Publish", "unary"),
            ("IngestService/PublishBatch", "unary"),
            ("IngestService/PublishStream", "stream_unary"),
        ]
    )
    raw = st.tuples(methods, undecodable_messages())
    tallies = [
        await run_target("ingest.Publish", draw(events(), share("ingest.Publish"), 1), publish),
        await run_target("ingest.PublishBatch", draw(batches, share("ingest.PublishBatch"), 2), batch),
        await run_target("ingest.PublishStream", draw(batches, share("ingest.PublishStream"), 3), stream),
        await run_target(
            "ingest.undecodable",
            draw(raw, share("ingest.undecodable"), 4),
            lambda item: call_raw(ingest_channel, item[0][0], item[0][1], item[1]),
        ),
    ]
    for tally in tallies:
        assert_clear(tally)
    reply = await stub.Publish(ingest_pb2.PublishRequest(event=record_to_event(valid_event(1))), timeout=TIMEOUT_S)
    assert reply.event_id == "e-fuzz-1"


async def test_inference_answers_bad_input_clearly_and_keeps_serving(inference_channel) -> None:
    stub = inference_pb2_grpc.InferenceServiceStub(inference_channel)
    batches = st.lists(predict_requests(), min_size=1, max_size=5)

    async def predict(request: inference_pb2.PredictRequest) -> tuple[Outcome, str]:
        await stub.Predict(request, timeout=TIMEOUT_S)
        return Outcome.OK, ""

    async def batch(requests: list[inference_pb2.PredictRequest]) -> tuple[Outcome, str]:
        reply = await stub.PredictBatch(inference_pb2.PredictBatchRequest(requests=requests), timeout=TIMEOUT_S)
        if len(reply.responses) != len(requests):
            return Outcome.UNCLEAR, f"{len(reply.responses)} answers to {len(requests)} requests"
        return Outcome.OK, ""

    async def stream(requests: list[inference_pb2.PredictRequest]) -> tuple[Outcome, str]:
        answers = await written_stream(stub.PredictStream(timeout=TIMEOUT_S), requests)
        if len(answers) != len(requests):
            return Outcome.UNCLEAR, f"{len(answers)} answers to {len(requests)} requests"
        return Outcome.OK, ""

    methods = st.sampled_from(
        [
            ("InferenceService/Predict", "unary"),
            ("InferenceService/PredictBatch", "unary"),
            ("InferenceService/PredictStream", "stream_stream"),
        ]
    )
    raw = st.tuples(methods, undecodable_messages())
    tallies = [
        await run_target("inference.Predict", draw(predict_requests(), share("inference.Predict"), 5), predict),
        await run_target("inference.PredictBatch", draw(batches, share("inference.PredictBatch"), 6), batch),
        await run_target("inference.PredictStream", draw(batches, share("inference.PredictStream"), 7), stream),
        await run_target(
            "inference.undecodable",
            draw(raw, share("inference.undecodable"), 8),
            lambda item: call_raw(inference_channel, item[0][0], item[0][1], item[1]),
        ),
    ]
    for tally in tallies:
        assert_clear(tally)
    request = inference_pb2.PredictRequest(event=record_to_event(valid_event(2)))
    assert (await stub.Predict(request, timeout=TIMEOUT_S)).model_name == MODEL
