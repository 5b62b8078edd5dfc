"""gRPC adapter: IngestService RPCs over EventPublisher."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import grpc

from kestrel.api.v1 import event_pb2, ingest_pb2, ingest_pb2_grpc
from kestrel.common.admission import Admission
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


class StreamResults:
    """A PublishStream's answer, built as the stream goes, in bounded memory: every event's result while fewer
    than `limit` are kept, then only the events not accepted (those a client must act on), up to `limit` more;
    the rest are counted in `omitted`. Counts of accepted and rejected cover every event."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.response = ingest_pb2.PublishBatchResponse()

    def add(self, outcomes: Sequence[Outcome]) -> None:
        r = self.response
        for outcome in outcomes:
            r.accepted += outcome.accepted
            r.rejected += not outcome.accepted
            kept = len(r.results)
            if kept < self.limit or (not outcome.accepted and kept < 2 * self.limit):
                r.results.append(_item(outcome))
            else:
                r.omitted += 1


class IngestServicer(ingest_pb2_grpc.IngestServiceServicer):
    def __init__(
        self, publisher: EventPublisher, stream_chunk: int, stream_results_max: int, admission: Admission
    ) -> None:
        self._publisher = publisher
        self._admission = admission
        self._chunk = stream_chunk
        self._results_max = stream_results_max

    async def Publish(
        self, request: ingest_pb2.PublishRequest, context: grpc.aio.ServicerContext
    ) -> ingest_pb2.PublishResponse:
        with self._admission.admit(1):
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
        with self._admission.admit(len(request.events)):
            outcomes = await self._publisher.publish(request.events)
        results = StreamResults(limit=len(outcomes))  # a batch is bounded already: every event's result
        results.add(outcomes)
        return results.response

    async def PublishStream(
        self, request_iterator: AsyncIterator[ingest_pb2.PublishRequest], context: grpc.aio.ServicerContext
    ) -> ingest_pb2.PublishBatchResponse:
        """Publishes chunk by chunk; reading pauses while a chunk waits for acks (HTTP/2 flow control), and the
        answer is kept bounded (StreamResults), so a stream of any length holds one chunk and the results."""
        results, seen = StreamResults(self._results_max), 0
        chunk: list[event_pb2.Event] = []
        async for request in request_iterator:
            chunk.append(request.event)
            if len(chunk) >= self._chunk:
                results.add(await self._publish_chunk(chunk, seen))
                seen, chunk = seen + len(chunk), []
        if chunk:
            results.add(await self._publish_chunk(chunk, seen))
        return results.response

    async def _publish_chunk(self, chunk: list[event_pb2.Event], offset: int) -> list[Outcome]:
        # Only a stream's first chunk may be refused: a refusal later would end the stream and lose the answer
        # about the chunks already published. Later chunks are let in past the limit and counted; a stream holds
        # one chunk at a time (reading pauses while it is published), so its memory stays bounded.
        with self._admission.admit(len(chunk), may_refuse=offset == 0):
            outcomes = await self._publisher.publish(chunk)
        for o in outcomes:
            o.index += offset
        return outcomes
