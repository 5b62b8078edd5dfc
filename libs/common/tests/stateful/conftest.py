"""A counting processor over the stateful loop, and fake Kafka clients that journal what happens, in order."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition

from kestrel.common.errors import UnavailableError
from kestrel.common.kafka import BatchAck, Delivery, OutRecord
from kestrel.common.stateful import BatchResult, KeyedStateStore

TOPIC = "events"
T0 = 1_700_000_000_000


@dataclass
class Record:
    """The fields of aiokafka's ConsumerRecord the loop reads; the value is b"key:event_time"."""

    value: bytes
    partition: int = 0
    offset: int = 0
    topic: str = TOPIC
    key: bytes | None = None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass
class Count:
    n: int = 0
    offset: int = -1
    newest: int | None = None


class CountCodec:
    def new(self) -> Count:
        return Count()

    def pack(self, state: Count) -> bytes:
        return f"{state.n},{state.offset},{state.newest}".encode()

    def unpack(self, packed: bytes) -> Count:
        n, offset, newest = packed.decode().split(",")
        return Count(int(n), int(offset), None if newest == "None" else int(newest))

    def newest(self, state: Count | bytes) -> int | None:
        return self.unpack(state).newest if type(state) is bytes else state.newest  # type: ignore[union-attr]


class CountingProcessor:
    """Per key, how many events it had; each event's output is that running count. Replays are skipped."""

    def __init__(self, store: KeyedStateStore[Count]) -> None:
        self._store = store

    def process(self, records: Sequence[Record], now_ms: int) -> BatchResult:
        result = BatchResult()
        for r in records:
            key, t = r.value.decode().split(":")
            state = self._store.state(r.partition, key)
            if r.offset > state.offset:
                state.n, state.offset, state.newest = state.n + 1, r.offset, max(int(t), state.newest or 0)
                self._store.saw(r.partition, int(t))
                result.outputs.append(OutRecord("out", str(state.n).encode(), key.encode()))
            result.offsets[(r.topic, r.partition)] = r.offset + 1
        return result


def records(partition: int, offsets: range, key: str | None = None) -> list[Record]:
    key = key or f"key-{partition}"
    return [Record(f"{key}:{T0 + o * 1000}".encode(), partition=partition, offset=o) for o in offsets]


class Journal(list):
    """What happened, in order, across the fakes."""


class FakeConsumer:
    def __init__(self, journal: Journal, assignment: set[TopicPartition]) -> None:
        self.journal, self._assignment, self.listener = journal, assignment, None
        self.batches: asyncio.Queue[dict[TopicPartition, list[Record]]] = asyncio.Queue()
        self.committed_offsets: dict[TopicPartition, int] = {}
        self.highwaters: dict[TopicPartition, int] = {}

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.highwaters.get(tp)

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
        self._results = [error if fail else Delivery("out", 0, i) for i in range(n)]

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
    def __init__(self) -> None:
        self.published: list[Any] = []

    async def publish(self, rejections: list[Any]) -> None:
        self.published += rejections
