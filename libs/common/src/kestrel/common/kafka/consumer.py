"""At-least-once batch consumer: process a batch, dead-letter what is bad, then commit."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from tenacity import RetryCallState

from kestrel.common.kafka.deadletter import DeadLetterPublisher, Rejection
from kestrel.common.retry import retrying

log = structlog.get_logger()

BatchHandler = Callable[[Sequence[ConsumerRecord]], Awaitable[Sequence[Rejection]]]
"""Processes a batch; returns the records it rejects (they go to the dead-letter topic).
Raising means a transient failure: the whole batch is retried with backoff (sinks are idempotent)."""


@dataclass(frozen=True, slots=True)
class ConsumerOptions:
    max_batch: int = 2000
    """Records handed to the handler at once: with fetch sizes, the bound on memory held."""
    poll_timeout_ms: int = 200
    retry_initial_s: float = 0.1
    retry_max_s: float = 10.0
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 1_000
    max_partition_fetch_bytes: int = 1 << 20
    auto_offset_reset: str = "earliest"


class _CommitOnRevoke(ConsumerRebalanceListener):
    """Waits for the batch in flight to finish (and commit) before partitions move elsewhere."""

    def __init__(self, lock: asyncio.Lock) -> None:
        self._lock = lock

    async def on_partitions_revoked(self, revoked: Any) -> None:
        async with self._lock:
            log.info("partitions_revoked", partitions=sorted(str(tp) for tp in revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        log.info("partitions_assigned", partitions=sorted(str(tp) for tp in assigned))


class BatchConsumer:
    """Thin adapter between a Kafka consumer group and a batch handler."""

    def __init__(self, topics: Sequence[str], group_id: str, handler: BatchHandler,
                 dead_letters: DeadLetterPublisher, client_config: dict[str, Any],
                 options: ConsumerOptions | None = None, name: str = "consumer") -> None:
        self.options = options or ConsumerOptions()
        self._topics = list(topics)
        self._handler = handler
        self._dead_letters = dead_letters
        self._name = name
        self._lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
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
        self._consumer.subscribe(self._topics, listener=_CommitOnRevoke(self._lock))
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name=f"{self._name}-loop")

    async def stop(self) -> None:
        """Stop intake, let the batch in flight finish and commit, then leave the group."""
        self._stopping.set()
        if self._task:
            await self._task
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
                    await self._process_with_retry(records)

    async def _process_with_retry(self, records: list[ConsumerRecord]) -> None:
        o = self.options
        try:
            async for attempt in retrying(o.retry_initial_s, o.retry_max_s, until=self._stopping,
                                          before_sleep=self._log_retry):
                with attempt:
                    rejections = await self._handler(records)
                    await self._dead_letters.publish(rejections)
        except Exception as exc:  # noqa: BLE001 - retried until stop; bad records are rejections, not errors
            log.warning("batch_abandoned_on_stop", consumer=self._name, error=str(exc))
            return  # not committed: redelivered after restart
        self.processed += len(records)
        self.rejected += len(rejections)
        await self._commit(records)

    def _log_retry(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else None
        log.warning("batch_retry", consumer=self._name, error=str(error), delay_s=delay)

    async def _commit(self, records: list[ConsumerRecord]) -> None:
        offsets: dict[TopicPartition, int] = {}
        for r in records:
            tp = TopicPartition(r.topic, r.partition)
            offsets[tp] = max(offsets.get(tp, 0), r.offset + 1)
        try:
            await self._consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            # The group moved on; the records will be redelivered to the new owner (at-least-once).
            log.warning("commit_failed", consumer=self._name, error=str(exc))
