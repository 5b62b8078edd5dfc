"""The consumer loop with fake Kafka clients: commit order, partition ownership, rewind after a failure."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import TopicPartition

from kestrel.common.errors import UnavailableError
from kestrel.featureset import load_feature_set
from kestrel.featureset.state import FeatureComputer
from kestrel.common.kafka import BatchAck, Delivery
from kestrel.features.processor import BatchProcessor
from kestrel.features.store import StateStore
from kestrel.featureset.wire import VectorEncoder
from kestrel.features.worker import StreamWorker, WorkerOptions

from .conftest import EVENTS, T0, VECTORS, Record, event

TOPIC = "events"
P0, P1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)


class Journal(list):
    """What happened, in order, across the fakes."""


class FakeConsumer:
    def __init__(self, journal: Journal, assignment: set[TopicPartition]) -> None:
        self.journal, self._assignment, self.listener = journal, assignment, None
        self.batches: asyncio.Queue[dict[TopicPartition, list[Record]]] = asyncio.Queue()
        self.committed_offsets: dict[TopicPartition, int] = {}

    def subscribe(self, topics: list[str], listener: Any) -> None:
        self.listener = listener

    async def start(self) -> None:
        await self.listener.on_partitions_assigned(set(self._assignment))

    async def stop(self) -> None:
        self.journal.append("consumer.stop")

    def assignment(self) -> set[TopicPartition]:
        return set(self._assignment)

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Record]]:
        try:
            return await asyncio.wait_for(self.batches.get(), timeout_ms / 1000)
        except TimeoutError:
            return {}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.journal.append(("commit", {tp.partition: o for tp, o in offsets.items()}))
        self.committed_offsets.update(offsets)

    async def committed(self, tp: TopicPartition) -> int | None:
        return self.committed_offsets.get(tp)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.journal.append(("seek", tp.partition, offset))

    async def seek_to_beginning(self, *tps: TopicPartition) -> None:
        self.journal.extend(("seek", tp.partition, 0) for tp in tps)


class FakeChangelog:
    def __init__(self, journal: Journal) -> None:
        self.journal, self.known_end, self.records = journal, {}, {}

    async def write(self, changes: list[tuple[int, bytes, bytes | None]]) -> None:
        self.journal.append(("changelog", len(changes)))
        for partition, key, value in changes:
            self.records.setdefault(partition, {})[key.decode()] = value
            self.known_end[partition] = self.known_end.get(partition, 0) + 1

    async def end_offsets(self, partitions: set[int]) -> dict[int, int]:
        return {p: self.known_end.get(p, 0) for p in partitions}

    async def read(self, partitions: set[int]) -> dict[int, dict[str, bytes]]:
        self.journal.append(("restore", sorted(partitions)))
        return {p: dict(self.records.get(p, {})) for p in partitions}


class FakeAck(BatchAck):
    def __init__(self, journal: Journal, n: int, fail: bool) -> None:
        self.journal = journal
        error = UnavailableError("broker gone")
        self.results = [error if fail else Delivery("features", 0, i) for i in range(n)]

    async def wait(self) -> bool:
        self.journal.append("acks")
        return True


class FakeProducer:
    def __init__(self, journal: Journal) -> None:
        self.journal, self.sent, self.fail = journal, [], 0

    async def produce_batch(self, records: list[Any]) -> FakeAck:
        self.sent += records
        self.fail -= 1
        return FakeAck(self.journal, len(records), self.fail >= 0)


class FakeLetters:
    async def publish(self, rejections: list[Any]) -> None:
        pass


@pytest.fixture
async def rig():
    journal = Journal()
    fs = load_feature_set()
    store = StateStore(FeatureComputer(fs))
    consumer, changelog, producer = FakeConsumer(journal, {P0, P1}), FakeChangelog(journal), FakeProducer(journal)
    processor = BatchProcessor(FeatureComputer(fs), store, EVENTS.deserialize,
                               VectorEncoder(VECTORS, fs.names, fs.version_id), "features")
    options = WorkerOptions(poll_timeout_ms=10, commit_interval_s=0.05, retry_max_s=0.05)
    worker = StreamWorker(lambda: consumer, TOPIC, processor, store, changelog,  # type: ignore[arg-type]
                          producer, FakeLetters(), options)  # type: ignore[arg-type]
    await worker.start()
    yield worker, consumer, producer, journal
    await worker.stop()


def records(partition: int, offsets: range) -> list[Record]:
    return [Record(EVENTS.serialize(event(o, T0 + o * 1000, entity=f"card-{partition}")), partition=partition,
                   offset=o, topic=TOPIC) for o in offsets]


async def settle(predicate: Any) -> None:
    for _ in range(200):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_commit_point_acks_then_changelog_then_offsets(rig) -> None:
    worker, consumer, _, journal = rig
    await consumer.batches.put({P0: records(0, range(3))})
    await settle(lambda: any(isinstance(j, tuple) and j[0] == "commit" for j in journal))
    first_commit = next(i for i, j in enumerate(journal) if isinstance(j, tuple) and j[0] == "commit")
    assert journal[first_commit - 2:first_commit + 1] == ["acks", ("changelog", 1), ("commit", {0: 3})]


async def test_records_of_partitions_no_longer_owned_are_dropped(rig) -> None:
    worker, consumer, producer, _ = rig
    consumer._assignment = {P0}  # P1 moved away while its records were being fetched
    await consumer.batches.put({P0: records(0, range(2)), P1: records(1, range(2))})
    await settle(lambda: worker.processed == 2)
    assert {r.key for r in producer.sent} == {b"card-0"}


async def test_records_fetched_twice_around_a_rebalance_count_once(rig) -> None:
    worker, consumer, producer, _ = rig
    await consumer.batches.put({P0: records(0, range(3))})
    await consumer.batches.put({P0: records(0, range(1, 4))})  # refetched from an older position
    await settle(lambda: worker.processed == 6)
    counts = [VECTORS.deserialize(r.value)["features"]["txn_count_1m"] for r in producer.sent]
    assert counts == [1, 2, 3, 4]


async def test_a_failed_batch_rewinds_to_the_last_commit_point(rig) -> None:
    worker, consumer, producer, journal = rig
    await consumer.batches.put({P0: records(0, range(2))})
    await settle(lambda: ("commit", {0: 2}) in journal)
    producer.fail = 1  # the next batch's vectors are never acknowledged
    await consumer.batches.put({P0: records(0, range(2, 4))})
    await settle(lambda: ("seek", 0, 2) in journal)
    assert ("restore", [0, 1]) in journal[journal.index(("commit", {0: 2})):]
    assert ("commit", {0: 4}) not in journal
    await consumer.batches.put({P0: records(0, range(2, 4))})  # the consumer delivers them again
    await settle(lambda: ("commit", {0: 4}) in journal)
    counts = [VECTORS.deserialize(r.value)["features"]["txn_count_1m"] for r in producer.sent]
    assert counts == [1, 2, 3, 4, 3, 4]  # recomputed from the restored state: the same vectors again
