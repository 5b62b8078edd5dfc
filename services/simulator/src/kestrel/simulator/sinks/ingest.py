"""Through the ingest API: PublishBatch calls over grpc.aio, per-item rejections counted by field."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import structlog

from kestrel.api.v1 import ingest_pb2, ingest_pb2_grpc
from kestrel.common.convert import record_to_event
from kestrel.common.errors import InvalidArgumentError, KestrelError, UnavailableError
from kestrel.common.retry import retrying
from kestrel.simulator.settings import SimulatorSettings
from kestrel.simulator.sinks.base import Record, SinkStats

log = structlog.get_logger()

MAX_BATCH = 2000
"""Events per PublishBatch at most (a few hundred KB): bigger batches only add latency."""
RETRYABLE = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}
)


class IngestSink:
    """Events only (the ingest API takes no labels): up to `ingest_concurrency` batches in flight.

    While every call is busy, new events pile up and leave together in the next call, so batches
    grow with ingest's latency instead of the sender stalling on small ones.

    A retried batch may be published twice; that is at-least-once, and downstream stores are
    idempotent by event_id. Errors no retry can fix (bad token, unknown method) stop the run.
    """

    def __init__(self, settings: SimulatorSettings, addr: str | None = None) -> None:
        self.addr = addr or settings.ingest_addr
        self._settings = settings
        token = settings.ingest_token.get_secret_value() if settings.ingest_token else None
        self._metadata = (("authorization", f"Bearer {token}"),) if token else None
        self._slots = asyncio.Semaphore(max(settings.ingest_concurrency, 1))
        self._tasks: set[asyncio.Task[None]] = set()
        self._buffer: list[Record] = []
        self._fatal: KestrelError | None = None
        self._channel: grpc.aio.Channel | None = None
        self._stub: ingest_pb2_grpc.IngestServiceStub | None = None
        self.events, self.labels = SinkStats(), SinkStats()

    async def start(self) -> None:
        self._channel = _channel(self._settings, self.addr)
        try:
            await asyncio.wait_for(self._channel.channel_ready(), self._settings.ingest_timeout_s)
        except TimeoutError as exc:
            await self._channel.close()
            raise UnavailableError(
                f"ingest at {self.addr} not reachable within {self._settings.ingest_timeout_s:g}s"
            ) from exc
        self._stub = ingest_pb2_grpc.IngestServiceStub(self._channel)

    async def send_events(self, events: list[Record]) -> None:
        if self._fatal is not None:
            raise self._fatal
        self._buffer.extend(events)
        if not self._buffer or (self._slots.locked() and len(self._buffer) < MAX_BATCH):
            return  # every call is busy: keep collecting; the next free call takes a bigger batch
        await self._slots.acquire()
        if self._buffer:
            self._launch()
        else:  # a finishing call took everything while we waited
            self._slots.release()

    def _launch(self) -> None:
        """Send the whole buffer as one PublishBatch; the caller holds a concurrency slot for it."""
        events, self._buffer = self._buffer[:MAX_BATCH], self._buffer[MAX_BATCH:]
        request = ingest_pb2.PublishBatchRequest(events=[record_to_event(e) for e in events])
        self.events.in_flight += len(events)
        task = asyncio.create_task(self._publish(request, len(events)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def send_labels(self, labels: list[Record]) -> None:
        raise NotImplementedError("the ingest API accepts events only; labels go to Kafka")

    async def close(self) -> None:
        if self._buffer and self._fatal is None:
            await self._slots.acquire()
            self._launch()
        while self._tasks:  # a finishing call may launch the next one from what was buffered
            await asyncio.gather(*list(self._tasks))
        if self._channel is not None:
            await self._channel.close()
        if self._fatal is not None:  # the run may have ended before another send could report it
            raise self._fatal

    async def _publish(self, request: ingest_pb2.PublishBatchRequest, size: int) -> None:
        try:
            self._count(await self._call(request))
        except grpc.aio.AioRpcError as exc:
            self.events.failed += size
            self.events.last_error = f"{exc.code().name}: {exc.details()}"
            log.warning("sim_ingest_batch_failed", code=exc.code().name, details=exc.details(), events=size)
            if exc.code() not in RETRYABLE:
                self._fatal = _fatal_error(exc, self.addr)
        finally:
            self.events.in_flight -= size
            if self._buffer and self._fatal is None:
                self._launch()  # hand the slot straight to what piled up meanwhile
            else:
                self._slots.release()

    async def _call(self, request: ingest_pb2.PublishBatchRequest) -> ingest_pb2.PublishBatchResponse:
        assert self._stub is not None, "sink not started"
        async for attempt in retrying(0.2, 5.0, attempts=self._settings.ingest_retries + 1, when=_retryable):
            with attempt:
                return await self._stub.PublishBatch(
                    request, timeout=self._settings.ingest_timeout_s, metadata=self._metadata
                )
        raise AssertionError("unreachable")

    def _count(self, response: ingest_pb2.PublishBatchResponse) -> None:
        stats = self.events
        stats.accepted += response.accepted
        if not response.rejected:
            return
        for item in response.results:
            if item.accepted:
                continue
            # Ingest reports an unacknowledged (valid) event as a violation without a field.
            if any(not v.field for v in item.violations):
                stats.failed += 1
                stats.last_error = item.violations[-1].reason
            else:
                stats.rejected += 1
                stats.rejections.update(v.field for v in item.violations)


def _channel(settings: SimulatorSettings, addr: str) -> grpc.aio.Channel:
    options = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    if not (settings.ingest_tls_cafile or settings.ingest_tls_certfile):
        return grpc.aio.insecure_channel(addr, options=options)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_read(settings.ingest_tls_cafile),
        private_key=_read(settings.ingest_tls_keyfile),
        certificate_chain=_read(settings.ingest_tls_certfile),
    )
    return grpc.aio.secure_channel(addr, credentials, options=options)


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, grpc.aio.AioRpcError) and exc.code() in RETRYABLE


def _read(path: str | None) -> bytes | None:
    return Path(path).read_bytes() if path else None


def _fatal_error(exc: grpc.aio.AioRpcError, addr: str) -> KestrelError:
    message = f"ingest at {addr} refused the batch: {exc.code().name}: {exc.details()}"
    if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgumentError("batch", message)
    return KestrelError(message)
