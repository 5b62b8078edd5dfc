"""gRPC adapter: IngestService RPCs over EventPublisher."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import grpc

from kestrel.api.v1 import event_pb2, ingest_pb2, ingest_pb2_grpc
from kestrel.common.errors import InvalidArgumentError, UnavailableError
from kestrel.ingest.publisher import EventPublisher, Outcome


def _item(outcome: Outcome) -> ingest_pb2.ItemResult:
    item = ingest_pb2.ItemResult(index=outcome.index, event_id=outcome.event_id, accepted=outcome.accepted)
    if outcome.delivery is not None:
        item.partition = outcome.delivery.partition
        item.offset = outcome.delivery.offset
    for v in outcome.violations:
        item.violations.add(field=v.field, reason=v.reason)
    if outcome.error:
        item.violations.add(field="", reason=f"unavailable: {outcome.error}")
    return item


def _batch_response(outcomes: Sequence[Outcome]) -> ingest_pb2.PublishBatchResponse:
    accepted = sum(o.accepted for o in outcomes)
    return ingest_pb2.PublishBatchResponse(
        results=[_item(o) for o in outcomes], accepted=accepted, rejected=len(outcomes) - accepted
    )


class IngestServicer(ingest_pb2_grpc.IngestServiceServicer):
    def __init__(self, publisher: EventPublisher, stream_chunk: int) -> None:
        self._publisher = publisher
        self._chunk = stream_chunk

    async def Publish(
        self, request: ingest_pb2.PublishRequest, context: grpc.aio.ServicerContext
    ) -> ingest_pb2.PublishResponse:
        (outcome,) = await self._publisher.publish([request.event])
        if outcome.violations:
            first, *rest = outcome.violations
            raise InvalidArgumentError(first.field, first.reason, [(v.field, v.reason) for v in rest])
        if outcome.error:
            raise UnavailableError(outcome.error)
        assert outcome.delivery is not None
        return ingest_pb2.PublishResponse(
            event_id=outcome.event_id, partition=outcome.delivery.partition, offset=outcome.delivery.offset
        )

    async def PublishBatch(
        self, request: ingest_pb2.PublishBatchRequest, context: grpc.aio.ServicerContext
    ) -> ingest_pb2.PublishBatchResponse:
        return _batch_response(await self._publisher.publish(request.events))

    async def PublishStream(
        self, request_iterator: AsyncIterator[ingest_pb2.PublishRequest], context: grpc.aio.ServicerContext
    ) -> ingest_pb2.PublishBatchResponse:
        """Publishes chunk by chunk; reading pauses while a chunk waits for acks (HTTP/2 flow control)."""
        outcomes: list[Outcome] = []
        chunk: list[event_pb2.Event] = []
        async for request in request_iterator:
            chunk.append(request.event)
            if len(chunk) >= self._chunk:
                outcomes.extend(await self._publish_chunk(chunk, len(outcomes)))
                chunk = []
        if chunk:
            outcomes.extend(await self._publish_chunk(chunk, len(outcomes)))
        return _batch_response(outcomes)

    async def _publish_chunk(self, chunk: list[event_pb2.Event], offset: int) -> list[Outcome]:
        outcomes = await self._publisher.publish(chunk)
        for o in outcomes:
            o.index += offset
        return outcomes
