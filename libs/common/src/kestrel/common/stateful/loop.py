"""The stateful consumer loop: fetch a batch, process, produce; at each commit point flush acks, changelog, offsets.

Order at a commit point, so a crash anywhere loses nothing and never applies an event to state twice:
outputs and dead letters acknowledged -> changed state written to the changelog -> offsets committed.
A restart replays from the committed offsets; events the restored state already holds (its offset
is at or past theirs) are skipped, and their outputs were already acknowledged.

After a failed batch nothing is committed until the loop is back at the last commit point, not even
on revocation or stop: memory then holds state whose outputs may never have been delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from prometheus_client import Histogram

from kestrel.common.kafka import DeadLetterPublisher, Producer
from kestrel.common.kafka.consumer import LAG
from kestrel.common.kafka.context import offset_ranges
from kestrel.common.kafka.producer import BatchAck
from kestrel.common.retry import Backoff
from kestrel.common.stateful.changelog import Changelog
from kestrel.common.stateful.processor import StatefulProcessor
from kestrel.common.stateful.store import StateStore

log = structlog.get_logger()

BATCH_SECONDS = Histogram("kestrel_state_batch_seconds", "Time to process one batch (no I/O)", ["loop"])
COMMIT_SECONDS = Histogram("kestrel_state_commit_seconds", "Acks + changelog + offset commit", ["loop"])


@dataclass(frozen=True)
class LoopOptions:
    batch_max: int = 1000
    poll_timeout_ms: int = 100
    commit_interval_s: float = 1.0
    evict_interval_s: float = 300.0
    retry_min_s: float = 0.1
    retry_max_s: float = 10.0


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, loop: StatefulLoop) -> None:
        self._loop = loop

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self._loop.on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self._loop.on_assigned(assigned)


class StatefulLoop:
    """Owns the consumer; every state change and commit happens under one lock, so a rebalance
    waits for the batch in flight and then commits before partitions move.

    On assignment the store is restored from the changelog partitions of what is now owned.
    """

    def __init__(
        self,
        name: str,
        consumer: Callable[[], AIOKafkaConsumer],
        topic: str,
        processor: StatefulProcessor,
        store: StateStore,
        changelog: Changelog,
        producer: Producer,
        dead_letters: DeadLetterPublisher,
        options: LoopOptions,
    ) -> None:
        self.name, self._new_consumer, self._topic = name, consumer, topic
        self._consumer: AIOKafkaConsumer = None  # made in start(), inside the loop
        self._processor, self._store, self._changelog = processor, store, changelog
        self._producer, self._dead_letters = producer, dead_letters
        self.options = options
        self._lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._acks: list[BatchAck] = []
        self._offsets: dict[TopicPartition, int] = {}
        self._last_commit = self._last_evict = time.monotonic()
        self._consistent = True
        """False after a failed or skipped commit: memory may hold state the changelog and offsets do not."""
        self._rewind_needed = False
        self.processed = 0

    @property
    def store(self) -> StateStore:
        return self._store

    async def start(self) -> None:
        self._consumer = self._new_consumer()
        self._consumer.subscribe([self._topic], listener=_Rebalance(self))
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name=f"{self.name}-loop")

    async def stop(self) -> None:
        """Stop intake, commit what was processed (unless a batch failed), then leave the group."""
        self._stopping.set()
        if self._task:
            await self._task
        async with self._lock:
            await self._commit_quietly()
        await self._consumer.stop()

    async def wait(self) -> None:
        if self._task:
            await self._task

    async def _run(self) -> None:
        backoff = Backoff(self.options.retry_min_s, self.options.retry_max_s)
        while not self._stopping.is_set():
            try:
                await self._step()
                backoff.reset()
            except Exception as exc:  # noqa: BLE001 - any failure: back off, then rewind to the last commit point
                delay = backoff.next()
                log.warning(
                    "stateful_batch_failed", loop=self.name, error=f"{type(exc).__name__}: {exc}", retry_in_s=delay
                )
                # Set before the next await, so a rebalance or stop waiting for the lock sees it.
                self._rewind_needed = True
                with contextlib.suppress(TimeoutError):  # stop() ends the back-off at once
                    await asyncio.wait_for(self._stopping.wait(), delay)

    async def _step(self) -> None:
        batches = await self._consumer.getmany(
            timeout_ms=self.options.poll_timeout_ms, max_records=self.options.batch_max
        )
        async with self._lock:
            if self._rewind_needed:
                await self._rewind()  # what was just fetched predates the seek: it comes again
                return
            records = self._owned(batches)
            if records:
                await self._process(records)
            await self._maybe_commit()

    def _owned(self, batches: dict[TopicPartition, list[ConsumerRecord]]) -> list[ConsumerRecord]:
        """Records of partitions we still own; a rebalance may have happened while they were fetched.

        Records of a partition we kept are processed even if fetched before the rebalance: any the
        restored state already holds are skipped by offset, so processing them twice changes nothing.
        """
        assigned, restored = self._consumer.assignment(), self._store.partitions
        return [r for tp, records in batches.items() if tp in assigned and tp.partition in restored for r in records]

    async def _process(self, records: Sequence[ConsumerRecord]) -> None:
        with structlog.contextvars.bound_contextvars(loop=self.name, offsets=offset_ranges(records)):
            with BATCH_SECONDS.labels(self.name).time():
                result = self._processor.process(records, int(time.time() * 1000))
            if result.outputs:
                self._acks.append(await self._producer.produce_batch(result.outputs))
            await self._dead_letters.publish(result.rejections)
            for (topic, partition), offset in result.offsets.items():
                tp = TopicPartition(topic, partition)
                self._offsets[tp] = offset
                self._report_lag(tp, offset)
            self.processed += len(records)
            log.debug(
                "batch_processed", records=len(records), outputs=len(result.outputs), rejected=len(result.rejections)
            )

    def _report_lag(self, tp: TopicPartition, next_offset: int) -> None:
        """From the high watermark the last fetch saw, as the batch consumer does: no request to the broker."""
        highwater = self._consumer.highwater(tp)
        if highwater is not None:
            LAG.labels(self.name, tp.topic, str(tp.partition)).set(max(0, highwater - next_offset))

    async def _maybe_commit(self) -> None:
        now = time.monotonic()
        if now - self._last_commit >= self.options.commit_interval_s:
            await self._commit()
        if now - self._last_evict >= self.options.evict_interval_s:
            self._last_evict = now
            await self._changelog.write(self._store.evict(int(time.time() * 1000)))

    async def _commit(self) -> None:
        with COMMIT_SECONDS.labels(self.name).time():
            acks, self._acks = self._acks, []
            for ack in acks:
                await ack.wait()
                ack.raise_for_failures("vectors and dead letters")
            await self._changelog.write(self._store.take_changes())
            if self._offsets:
                offsets, self._offsets = self._offsets, {}
                await self._commit_offsets(offsets)
            self._last_commit = time.monotonic()

    async def _commit_offsets(self, offsets: dict[TopicPartition, int]) -> None:
        try:
            await self._consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            # The group moved on: the new owner replays from the last commit; the changelog already
            # holds our state, so it skips what we applied (their outputs are acknowledged).
            log.warning("stateful_commit_failed", loop=self.name, error=str(exc))

    async def _commit_quietly(self) -> None:
        """The commit at revocation and stop: none past a failed batch, whose part was never delivered."""
        if self._rewind_needed:
            self._consistent = False
            log.warning("stateful_commit_skipped", loop=self.name, reason="a batch failed since the last commit")
            return
        try:
            await self._commit()
        except Exception as exc:  # noqa: BLE001 - the next owner replays from the last commit point
            self._consistent = False
            log.warning("stateful_final_commit_failed", loop=self.name, error=str(exc))

    async def _rewind(self) -> None:
        """Back to the last commit point: reload owned partitions from the changelog, seek to committed offsets."""
        self._acks, self._offsets = [], {}
        self._consistent = False
        owned = [tp for tp in self._consumer.assignment() if tp.topic == self._topic]
        await self._restore(owned)
        for tp in owned:
            committed = await self._consumer.committed(tp)
            if committed is None:
                await self._consumer.seek_to_beginning(tp)
            else:
                self._consumer.seek(tp, committed)
        self._rewind_needed = False
        log.info("stateful_rewound", loop=self.name, partitions=sorted(tp.partition for tp in owned))

    async def on_revoked(self, revoked: Any) -> None:
        async with self._lock:
            await self._commit_quietly()
            log.info("partitions_revoked", loop=self.name, partitions=sorted(tp.partition for tp in revoked))

    async def on_assigned(self, assigned: Any) -> None:
        async with self._lock:
            owned = [tp for tp in assigned if tp.topic == self._topic]
            try:
                await self._restore(owned)
            except Exception as exc:  # noqa: BLE001 - the loop retries: restore, then seek to the committed offsets
                log.warning("state_restore_failed", loop=self.name, error=f"{type(exc).__name__}: {exc}")
                self._rewind_needed = True
            log.info(
                "partitions_assigned",
                loop=self.name,
                partitions=sorted(tp.partition for tp in owned),
                keys=len(self._store),
            )

    async def _restore(self, owned: Sequence[TopicPartition]) -> None:
        """Keep partitions whose changelog nobody else wrote since we last did; read the rest back."""
        wanted = {tp.partition for tp in owned}
        self._store.drop(self._store.partitions - wanted)
        ends = await self._changelog.end_offsets(wanted) if wanted else {}
        current = {
            p
            for p in wanted & self._store.partitions
            if self._consistent and self._changelog.known_end.get(p) == ends.get(p)
        }
        stale = wanted - current
        for partition, states in (await self._changelog.read(stale)).items():
            self._store.load(partition, states)
        self._consistent = True
        if stale:
            log.info("state_restored", loop=self.name, partitions=sorted(stale), keys=len(self._store))
