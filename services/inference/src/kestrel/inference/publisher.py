"""Prediction records to Kafka without holding up responses: a bounded buffer drained by one task.

Predict hands its encoded records over and answers at once; the drain task produces them in batches
and sends again only what Kafka refused (the producer is idempotent). An ack that is late is waited for, never
answered by sending the records again: librdkafka still holds them and reports each one, delivered or failed,
within its own delivery timeout, so a second copy would be a duplicate with the same prediction id.
The buffer is bounded: when it is full (Kafka slow or down), callers wait for room -- backpressure, counted in
kestrel_inference_publish_blocked_total -- and get UNAVAILABLE after `block_s`, never unbounded memory.
On stop the buffer is delivered for up to `grace_s`; what is left then is counted as dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque

import structlog
from prometheus_client import Counter, Gauge, Histogram

from kestrel.common.errors import UnavailableError
from kestrel.common.kafka import OutRecord, Producer
from kestrel.common.retry import Backoff

log = structlog.get_logger()

BUFFERED = Gauge("kestrel_inference_publish_buffered", "Prediction records waiting for Kafka's ack")
PUBLISHED = Counter("kestrel_inference_published_total", "Prediction records acknowledged by Kafka")
RETRIED = Counter("kestrel_inference_publish_retried_total", "Prediction records sent again after a failed delivery")
UNACKED = Counter(
    "kestrel_inference_publish_unacked_total",
    "Prediction records not acknowledged within the delivery timeout (waited for, not sent again)",
)
DROPPED = Counter(
    "kestrel_inference_publish_dropped_total", "Prediction records still buffered when the shutdown grace ran out"
)
BLOCKED = Counter("kestrel_inference_publish_blocked_total", "Calls that waited for room in the full buffer")
BLOCKED_SECONDS = Histogram(
    "kestrel_inference_publish_blocked_seconds",
    "Time callers waited for room",
    buckets=(0.001, 0.01, 0.1, 0.5, 1, 2.5, 5, 10),
)
REFUSED = Counter(
    "kestrel_inference_publish_refused_total", "Calls answered UNAVAILABLE because the buffer stayed full"
)


class PredictionPublisher:
    def __init__(
        self,
        producer: Producer,
        *,
        capacity: int = 50_000,
        batch: int = 2000,
        block_s: float = 5.0,
        delivery_timeout_s: float = 30.0,
        retry_initial_s: float = 0.1,
        retry_max_s: float = 5.0,
        grace_s: float = 10.0,
    ) -> None:
        self._producer = producer
        self.capacity = capacity
        self._batch = batch
        self._block_s = block_s
        self._timeout = delivery_timeout_s
        self._retry = (retry_initial_s, retry_max_s)
        self._grace = grace_s
        self._pending: deque[OutRecord] = deque()
        self.size = 0
        """Records held: waiting plus in flight; at most capacity (a single call larger than it is let in alone)."""
        self._room = asyncio.Condition()
        self._work = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    async def start(self) -> None:
        self._task = asyncio.create_task(self._drain(), name="prediction-publisher")

    async def stop(self) -> None:
        """Delivers what is buffered for up to grace_s, then stops; what is left is counted as dropped."""
        self._closing = True
        self._work.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), self._grace)
        except TimeoutError:
            DROPPED.inc(self.size)
            log.error("prediction_records_dropped_at_shutdown", records=self.size, grace_s=self._grace)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def put(self, records: list[OutRecord]) -> None:
        """Takes the records, waiting for room while the buffer is full; UnavailableError after block_s."""
        if not records:
            return
        if self._closing:
            raise UnavailableError("shutting down: prediction records are no longer accepted")
        if not self._fits(len(records)):
            await self._wait_for_room(len(records))
        self._pending.extend(records)
        self.size += len(records)
        BUFFERED.set(self.size)
        self._work.set()

    def _fits(self, n: int) -> bool:
        return self.size + n <= self.capacity or self.size == 0

    async def _wait_for_room(self, n: int) -> None:
        BLOCKED.inc()
        started = time.perf_counter()
        try:
            async with self._room:
                await asyncio.wait_for(self._room.wait_for(lambda: self._fits(n)), self._block_s)
        except TimeoutError:
            REFUSED.inc()
            raise UnavailableError(
                f"prediction log backlog full ({self.size} records waiting for Kafka for over {self._block_s:g}s); "
                "retry later"
            ) from None
        finally:
            BLOCKED_SECONDS.observe(time.perf_counter() - started)

    async def _drain(self) -> None:
        backoff = Backoff(*self._retry)
        while True:
            if not self._pending:
                if self._closing:
                    return
                self._work.clear()
                await self._work.wait()
                continue
            batch = [self._pending.popleft() for _ in range(min(self._batch, len(self._pending)))]
            failed = await self._send(batch)
            if failed:
                RETRIED.inc(len(failed))
                self._pending.extendleft(reversed(failed))
                await asyncio.sleep(backoff.next())
            else:
                backoff.reset()
            done = len(batch) - len(failed)
            if done:
                PUBLISHED.inc(done)
                self.size -= done
                BUFFERED.set(self.size)
                async with self._room:
                    self._room.notify_all()

    async def _send(self, out: list[OutRecord]) -> list[OutRecord]:
        """Returns the records Kafka refused (to send again)."""
        try:
            ack = await self._producer.produce_batch(out)
        except Exception as exc:  # noqa: BLE001 - keep the records and retry; the producer may recover
            log.warning("prediction_publish_failed", records=len(out), error=str(exc))
            return out
        if not await ack.wait(self._timeout):
            late = ack.unreported()
            UNACKED.inc(late)
            log.warning("prediction_acks_late", records=late, timeout_s=self._timeout)
            await ack.wait()  # librdkafka reports every record; shutdown's grace bounds this wait
        errors = ack.errors("delivery not reported")
        failed = [out[i] for i in errors]
        if failed:
            log.warning("prediction_delivery_failed", records=len(failed), error=next(iter(errors.values())))
        return failed
