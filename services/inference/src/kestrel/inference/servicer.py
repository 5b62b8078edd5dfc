"""gRPC adapter: the one place that turns protobuf into the core's plain values and predictions back into protobuf.

Handlers raise domain errors (InvalidArgumentError, UnavailableError); the server's ErrorMappingInterceptor
alone turns them into status codes. Each RPC binds its log context (rpc, request id or size) for its lines.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import grpc
from structlog.contextvars import bound_contextvars

from kestrel.api.v1 import inference_pb2, inference_pb2_grpc
from kestrel.common.admission import Admission
from kestrel.common.convert import event_to_record
from kestrel.common.errors import InvalidArgumentError
from kestrel.common.validation import Limits
from kestrel.inference.coalescer import Coalescer
from kestrel.inference.core import Prediction, Request, valid_prefix, validate
from kestrel.inference.scoring import Scorer

_END = object()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def to_request(message: inference_pb2.PredictRequest) -> Request:
    if not message.HasField("event"):
        return Request(None, message.entity_id, message.request_id)
    return Request(event_to_record(message.event), message.entity_id, message.request_id, message.event.ByteSize())


def to_response(p: Prediction) -> inference_pb2.PredictResponse:
    return inference_pb2.PredictResponse(
        prediction_id=p.prediction_id,
        score=p.score,
        decision=p.decision,
        threshold=p.threshold,
        model_name=p.model_name,
        model_version=p.model_version,
        features_age_ms=p.features_age_ms,
        degraded=p.degraded,
        flags=p.flags,
        feature_set_version=p.feature_set_version,
    )


class InferenceServicer(inference_pb2_grpc.InferenceServiceServicer):
    def __init__(
        self,
        scorer: Scorer,
        coalescer: Coalescer,
        limits: Limits,
        admission: Admission,
        *,
        max_batch: int,
        stream_window: int,
    ) -> None:
        self._scorer = scorer
        self._admission = admission
        self._coalescer = coalescer
        self._limits = limits
        self._max_batch = max_batch
        self._window = stream_window

    async def Predict(
        self, request: inference_pb2.PredictRequest, context: grpc.aio.ServicerContext
    ) -> inference_pb2.PredictResponse:
        with bound_contextvars(rpc="Predict", request_id=request.request_id):
            (item,) = validate([to_request(request)], self._limits, _now_ms())
            with self._admission.admit(1):
                return to_response(await self._coalescer.submit(item))

    async def PredictBatch(
        self, request: inference_pb2.PredictBatchRequest, context: grpc.aio.ServicerContext
    ) -> inference_pb2.PredictBatchResponse:
        if len(request.requests) > self._max_batch:
            raise InvalidArgumentError("requests", f"at most {self._max_batch} per call, got {len(request.requests)}")
        if not request.requests:
            return inference_pb2.PredictBatchResponse()
        with bound_contextvars(rpc="PredictBatch", requests=len(request.requests)):
            items = validate(
                [to_request(r) for r in request.requests], self._limits, _now_ms(), lambda i: f"requests[{i}]."
            )
            with self._admission.admit(len(items)):
                predictions = await self._scorer.score(items)
            return inference_pb2.PredictBatchResponse(responses=[to_response(p) for p in predictions])

    async def PredictStream(
        self, request_iterator: AsyncIterator[inference_pb2.PredictRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[inference_pb2.PredictResponse]:
        """Scores whatever requests have arrived (up to stream_window) together, answering in request order.
        An invalid request ends the stream with INVALID_ARGUMENT naming it (requests[<n>] counts from 0 on this
        stream), after every request before it has been answered."""
        queue: asyncio.Queue[object] = asyncio.Queue(self._window)
        reader = asyncio.create_task(self._read(request_iterator, queue))
        index = 0
        try:
            while True:
                requests, end, failure = await self._next_window(queue)
                with (
                    bound_contextvars(rpc="PredictStream", first_request=index, requests=len(requests)),
                    self._admission.admit(len(requests), may_refuse=index == 0),  # later windows: counted only
                ):
                    responses, invalid = await self._answer(requests, index)
                for response in responses:  # yielded outside the bound context: it must not leak to the caller
                    yield response
                if invalid is not None:
                    raise invalid
                index += len(requests)
                if failure is not None:
                    raise failure
                if end:
                    break
        finally:
            reader.cancel()

    async def _next_window(self, queue: asyncio.Queue[object]) -> tuple[list[Request], bool, BaseException | None]:
        """The requests that have arrived (waiting for the first), whether the stream ended after them, and the
        error that ended it, if one did."""
        window = [await queue.get()]
        while len(window) < self._window and not queue.empty():
            window.append(queue.get_nowait())
        last = window[-1]
        end = last is _END or isinstance(last, BaseException)
        messages = window[:-1] if end else window
        failure = last if isinstance(last, BaseException) else None
        return [to_request(m) for m in messages], end, failure  # type: ignore[arg-type]

    async def _answer(
        self, requests: list[Request], base: int
    ) -> tuple[list[inference_pb2.PredictResponse], InvalidArgumentError | None]:
        """Responses to a window; at an invalid request, those to the requests before it and the error naming it."""
        try:
            items = validate(requests, self._limits, _now_ms(), lambda i: f"requests[{base + i}].")
        except InvalidArgumentError as exc:
            items = valid_prefix(requests, self._limits, _now_ms(), base)
            return [to_response(p) for p in await self._scorer.score(items)], exc
        return [to_response(p) for p in await self._scorer.score(items)], None

    @staticmethod
    async def _read(requests: AsyncIterator[inference_pb2.PredictRequest], queue: asyncio.Queue[object]) -> None:
        try:
            async for request in requests:
                await queue.put(request)  # full queue: stop reading, so HTTP/2 flow control holds the client back
        except Exception as exc:  # noqa: BLE001 - handed to the responding side, which raises it
            await queue.put(exc)
        else:
            await queue.put(_END)
