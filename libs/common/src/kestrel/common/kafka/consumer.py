"""At-least-once batch consumer: process a batch, dead-letter what is bad, then commit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from prometheus_client import Counter, Gauge
from tenacity import RetryCallState

from kestrel.common.errors import UnavailableError
from kestrel.common.kafka.context import offset_ranges
from kestrel.common.kafka.deadletter import DeadLetterPublisher, Rejection
from kestrel.common.retry import retrying

log = structlog.get_logger()

BatchHandler = Callable[[Sequence[ConsumerRecord]], Awaitable[Sequence[Rejection]]]
"""Processes a batch; returns the records it rejects (they go to the dead-letter topic). Raising retries the
whole batch with backoff (sinks are idempotent): UnavailableError says a dependency is down, so the batch is
retried until it is back, committing nothing; any other error blames the batch, which after
ConsumerOptions.max_attempts is dead-lettered whole with the last error, so its partition moves on."""

BATCHES_DEAD_LETTERED = Counter(
    "kestrel_consumer_batches_dead_lettered_total",
    "Batches whose handler kept failing, dead-lettered whole so their partition moves on",
    ["consumer"],
)
LAG = Gauge(
    "kestrel_consumer_lag_records",
    "Records on the partition after the last batch processed (the broker's high watermark minus the next offset)",
    ["consumer", "topic", "partition"],
)


@dataclass(frozen=True, slots=True)
class ConsumerOptions:
    max_batch: int = 2000
    """Records handed to the handler at once: with fetch sizes, the bound on memory held."""
    poll_timeout_ms: int = 200
    retry_initial_s: float = 0.1
    retry_max_s: float = 10.0
    max_attempts: int = 8
    """Failures per batch other than UnavailableError before the batch is dead-lettered and committed, so one
    batch that always fails cannot hold its partition and the group's rebalances forever."""
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 1_000
    max_partition_fetch_bytes: int = 1 << 20
    auto_offset_reset: str = "earliest"


class _CommitOnRevoke(ConsumerRebalanceListener):
    """Waits for the batch in flight to finish and its commit to be answered before partitions move elsewhere."""

    def __init__(self, lock: asyncio.Lock, settle: Callable[[], Awaitable[None]]) -> None:
        self._lock = lock
        self._settle = settle

    async def on_partitions_revoked(self, revoked: Any) -> None:
        async with self._lock:
            await self._settle()
            log.info("partitions_revoked", partitions=sorted(str(tp) for tp in revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        log.info("partitions_assigned", partitions=sorted(str(tp) for tp in assigned))


class BatchConsumer:
    """Thin adapter between a Kafka consumer group and a batch handler."""

    def __init__(
        self,
        topics: Sequence[str],
        group_id: str,
        handler: BatchHandler,
        dead_letters: DeadLetterPublisher,
        client_config: dict[str, Any],
        options: ConsumerOptions | None = None,
        name: str = "consumer",
    ) -> None:
        self.options = options or ConsumerOptions()
        self._topics = list(topics)
        self._handler = handler
        self._dead_letters = dead_letters
        self._name = name
        self._lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._committing: asyncio.Task[None] | None = None
        """The offset commit in flight, answered while the next batches are fetched and handled."""
        self._uncommitted: dict[TopicPartition, int] = {}
        """Offsets of handled batches not yet sent in a commit."""
        o = self.options
        self._consumer = AIOKafkaConsumer(
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset=o.auto_offset_reset,
            session_timeout_ms=o.session_timeout_ms,
            heartbeat_interval_ms=o.heartbeat_interval_ms,
            max_partition_fetch_bytes=o.max_partition_fetch_bytes,
            **client_config,
        )
        self.processed = 0
        self.rejected = 0

    async def start(self) -> None:
        self._consumer.subscribe(self._topics, listener=_CommitOnRevoke(self._lock, self._settle_commit))
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name=f"{self._name}-loop")

    async def stop(self) -> None:
        """Stop intake, let the batch in flight finish and commit, then leave the group."""
        self._stopping.set()
        if self._task:
            await asyncio.wait([self._task])  # a loop that failed reports it through wait(), not here
        try:
            await self._settle_commit()
        except Exception as exc:  # noqa: BLE001 - uncommitted records are redelivered to the next owner
            log.warning("final_commit_failed", error=f"{type(exc).__name__}: {exc}")
        await self._consumer.stop()

    async def wait(self) -> None:
        """Returns when the loop ends (stop() or a fatal error, which is re-raised)."""
        if self._task:
            await self._task

    async def _run(self) -> None:
        while not self._stopping.is_set():
            batches = await self._consumer.getmany(
                timeout_ms=self.options.poll_timeout_ms, max_records=self.options.max_batch
            )
            records = [r for part in batches.values() for r in part]
            if records:
                async with self._lock:
                    # Every line logged while this batch is handled (handler included) says which records.
                    with structlog.contextvars.bound_contextvars(consumer=self._name, offsets=offset_ranges(records)):
                        await self._process_with_retry(records)

    async def _process_with_retry(self, records: list[ConsumerRecord]) -> None:
        started = time.perf_counter()
        try:
            rejections = await self._settle(records)
        except Exception as exc:
            if not self._stopping.is_set():
                raise  # not even dead-lettering worked: end the loop uncommitted, so the service restarts
            log.warning("batch_abandoned_on_stop", error=str(exc))
            return  # not committed: redelivered after restart
        self.processed += len(records)
        self.rejected += len(rejections)
        await self._commit(records)
        log.debug(
            "batch_done",
            records=len(records),
            rejected=len(rejections),
            ms=round((time.perf_counter() - started) * 1000, 2),
        )

    async def _settle(self, records: list[ConsumerRecord]) -> Sequence[Rejection]:
        """The batch's rejections, dead-lettered; the whole batch when its handler kept failing."""
        try:
            return await self._attempt(records)
        except Exception as exc:
            if self._stopping.is_set():
                raise
            return await self._dead_letter_batch(records, exc)

    async def _attempt(self, records: list[ConsumerRecord]) -> Sequence[Rejection]:
        o = self.options
        async for attempt in retrying(
            o.retry_initial_s,
            o.retry_max_s,
            attempts=o.max_attempts,
            counts=_blames_batch,
            until=self._stopping,
            before_sleep=self._log_retry,
        ):
            with attempt:
                rejections = await self._handler(records)
                await self._dead_letters.publish(rejections)
        return rejections

    async def _dead_letter_batch(self, records: list[ConsumerRecord], error: Exception) -> list[Rejection]:
        """Dead-letter every record with the last error; while the dead-letter topic is unavailable, wait for it."""
        o = self.options
        reason = f"failed {o.max_attempts} attempts; last error: {type(error).__name__}: {error}"
        rejections = [Rejection(r, reason, "retries_exhausted") for r in records]
        async for attempt in retrying(
            o.retry_initial_s, o.retry_max_s, when=_unavailable, until=self._stopping, before_sleep=self._log_retry
        ):
            with attempt:
                await self._dead_letters.publish(rejections)
        BATCHES_DEAD_LETTERED.labels(self._name).inc()
        log.warning("batch_dead_lettered", records=len(records), error=reason)
        return rejections

    def _log_retry(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else None
        log.warning(
            "batch_retry", attempt=state.attempt_number, error=f"{type(error).__name__}: {error}", delay_s=delay
        )

    async def _commit(self, records: list[ConsumerRecord]) -> None:
        """Commits the batch's offsets without waiting for the answer: the next batch is fetched and handled
        meanwhile (a commit costs a round trip to the group coordinator: 1 ms here, 7-8 ms with a Kafka 4
        broker's default `group.coordinator.append.linger.ms`, which capped a consumer at ~130 batches/s).
        Commits go one at a time, in order: batches handled while one is in flight are committed together,
        with their highest offsets, as soon as it is answered (Java's commitAsync does the same). A revocation
        or stop waits until every handled batch is committed; a crash before that redelivers what was not, as
        a crash before the commit was sent would."""
        for r in records:
            tp = TopicPartition(r.topic, r.partition)
            self._uncommitted[tp] = max(self._uncommitted.get(tp, 0), r.offset + 1)
        task = self._committing
        if task is not None and task.done():
            self._committing = None
            task.result()  # a commit that failed other than by the group moving on ends the loop
        if self._committing is None:
            self._committing = asyncio.create_task(self._commit_pending(), name=f"{self._name}-commit")
        # Yield once, so the commit is sent now even when the next batches are already fetched and their
        # handler never waits for I/O.
        await asyncio.sleep(0)

    async def _settle_commit(self) -> None:
        """Returns once every handled batch is committed (raises what a failed commit raised, other than the
        group moving on)."""
        task, self._committing = self._committing, None
        if task is not None:
            await task
        if self._uncommitted:  # handled after the last commit task ended (or it failed): commit them now
            await self._commit_pending()

    async def _commit_pending(self) -> None:
        while self._uncommitted:
            offsets, self._uncommitted = self._uncommitted, {}
            await self._commit_offsets(offsets)

    async def _commit_offsets(self, offsets: dict[TopicPartition, int]) -> None:
        try:
            await self._consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            # The group moved on; the records will be redelivered to the new owner (at-least-once).
            log.warning("commit_failed", error=str(exc))
        self._report_lag(offsets)

    def _report_lag(self, offsets: dict[TopicPartition, int]) -> None:
        """Lag per partition from the high watermark the last fetch saw: no extra request to the broker."""
        for tp, next_offset in offsets.items():
            highwater = self._consumer.highwater(tp)
            if highwater is not None:
                LAG.labels(self._name, tp.topic, str(tp.partition)).set(max(0, highwater - next_offset))


def _unavailable(error: BaseException) -> bool:
    return isinstance(error, UnavailableError)


def _blames_batch(error: BaseException) -> bool:
    return not isinstance(error, UnavailableError)
