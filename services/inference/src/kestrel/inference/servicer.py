"""gRPC adapter: InferenceService RPCs over the Scorer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import grpc

from kestrel.api.v1 import inference_pb2, inference_pb2_grpc
from kestrel.common.errors import InvalidArgumentError
from kestrel.common.validation import Limits
from kestrel.inference.scoring import Coalescer, Item, Scorer, parse

_END = object()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class InferenceServicer(inference_pb2_grpc.InferenceServiceServicer):
    def __init__(self, scorer: Scorer, coalescer: Coalescer, limits: Limits, *, max_batch: int,
                 stream_window: int) -> None:
        self._scorer = scorer
        self._coalescer = coalescer
        self._limits = limits
        self._max_batch = max_batch
        self._window = stream_window

    async def Predict(self, request: inference_pb2.PredictRequest,
                      context: grpc.aio.ServicerContext) -> inference_pb2.PredictResponse:
        (item,) = parse([request], self._limits, _now_ms())
        return self._scorer.response(await self._coalescer.submit(item))

    async def PredictBatch(self, request: inference_pb2.PredictBatchRequest,
                           context: grpc.aio.ServicerContext) -> inference_pb2.PredictBatchResponse:
        if len(request.requests) > self._max_batch:
            raise InvalidArgumentError("requests", f"at most {self._max_batch} per call, got {len(request.requests)}")
        if not request.requests:
            return inference_pb2.PredictBatchResponse()
        items = parse(request.requests, self._limits, _now_ms(), lambda i: f"requests[{i}].")
        predictions = await self._scorer.score(items)
        return inference_pb2.PredictBatchResponse(responses=[self._scorer.response(p) for p in predictions])

    async def PredictStream(self, request_iterator: AsyncIterator[inference_pb2.PredictRequest],
                            context: grpc.aio.ServicerContext) -> AsyncIterator[inference_pb2.PredictResponse]:
        """Scores whatever requests have arrived (up to stream_window) together, answering in request order.
        An invalid request ends the stream with INVALID_ARGUMENT naming it (requests[<n>] counts from 0 on this
        stream), after every request before it has been answered."""
        queue: asyncio.Queue[object] = asyncio.Queue(self._window)
        reader = asyncio.create_task(self._read(request_iterator, queue))
        index = 0
        try:
            while True:
                first = await queue.get()
                if first is _END:
                    break
                if isinstance(first, BaseException):
                    raise first
                window = [first]
                while len(window) < self._window and not queue.empty():
                    window.append(queue.get_nowait())
                end = window[-1] is _END or isinstance(window[-1], BaseException)
                requests = window[:-1] if end else window
                base = index
                try:
                    items = parse(requests, self._limits, _now_ms(), lambda i: f"requests[{base + i}].")  # type: ignore[arg-type]
                except InvalidArgumentError:
                    for prediction in await self._scorer.score(self._valid_prefix(requests, base)):  # type: ignore[arg-type]
                        yield self._scorer.response(prediction)
                    raise
                index += len(requests)
                for prediction in await self._scorer.score(items):
                    yield self._scorer.response(prediction)
                if end:
                    if isinstance(window[-1], BaseException):
                        raise window[-1]
                    break
        finally:
            reader.cancel()

    def _valid_prefix(self, requests: list[inference_pb2.PredictRequest], base: int) -> list[Item]:
        """The requests before the first invalid one, parsed."""
        items: list[Item] = []
        for k, request in enumerate(requests):
            try:
                items += parse([request], self._limits, _now_ms(), lambda i: f"requests[{base + k}].")
            except InvalidArgumentError:
                break
        return items

    @staticmethod
    async def _read(requests: AsyncIterator[inference_pb2.PredictRequest], queue: asyncio.Queue[object]) -> None:
        try:
            async for request in requests:
                await queue.put(request)  # full queue: stop reading, so HTTP/2 flow control holds the client back
        except Exception as exc:  # noqa: BLE001 - handed to the responding side, which raises it
            await queue.put(exc)
        else:
            await queue.put(_END)
