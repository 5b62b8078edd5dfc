"""Feeding fuzzed frames straight into a consumed topic and judging each: processed, dead-lettered, or unclear."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from kestrel.common.avro import AvroSerde
from kestrel.common.errors import SerializationError
from kestrel.common.registry import FileSchemaRegistry
from kestrel.common.runtime.runner import ServiceApp
from kestrel.common.serde import serde_for_topic
from kestrel.common.topics import dead_letter_topic
from kestrel.devstack.topics import PrefixedTopics

from .sample import draw, share
from .strategies import frames, keys
from .tally import Outcome, Tally

MAX_FRAME = 900_000  # under the broker's default message.max.bytes: bigger frames never reach a consumer
DRAIN_S = 120.0


@dataclass
class TopicTarget:
    """One consumer of one topic: how to start it, and what its valid record looks like and proves."""

    name: str
    topic: str  # catalogue name
    schema: str
    service: str  # its dead letters go to kestrel.dlq.<service>.v1
    group: Callable[[PrefixedTopics], str]
    start: Callable[[PrefixedTopics], Awaitable[ServiceApp]]
    valid: Callable[[int], dict[str, Any]]
    processed: Callable[[PrefixedTopics, dict[str, Any]], Awaitable[bool]]
    must_reject: Callable[[dict[str, Any]], bool] = lambda record: False
    """A decodable record this consumer must dead-letter (e.g. an event that fails validation)."""
    foreign: str = "label"


@dataclass
class Sent:
    value: bytes | None
    partition: int
    offset: int
    decoded: dict[str, Any] | None


async def fuzz_topic(target: TopicTarget, topics: PrefixedTopics, salt: int) -> Tally:
    """Sends the target's share of fuzzed frames, then a valid record; waits for the group to commit past them
    all; judges every frame by the dead letters, and the valid record by its effect."""
    registry = FileSchemaRegistry()
    serde = serde_for_topic(registry, topics.name(target.topic), target.schema)
    foreign = serde_for_topic(registry, topics.name(f"kestrel.{target.foreign}s.v1"), target.foreign)
    await topics.apply(target.topic)
    n = share(target.name)
    bad = frames(serde, target.schema, foreign, target.foreign, target.valid(salt + 1))
    values = [v for v in draw(bad, n, salt) if len(v or b"") < MAX_FRAME]
    sent = await _send(topics, topics.name(target.topic), serde, values, draw(keys, len(values), salt + 1))
    good = target.valid(salt)
    (last,) = await _send(topics, topics.name(target.topic), serde, [serde.serialize(good)], [b"fuzz-valid"])
    tally = Tally(target.name)
    app = await target.start(topics)
    try:
        drained = await _drained(topics.bootstrap, target.group(topics), topics.name(target.topic))
        letters = await _dead_letters(topics, target.service, topics.name(target.topic))
        failed = bool(getattr(app, "failed", False))
        for item in sent:
            tally.add(*_judge(item, letters, target, drained and not failed))
        ok = drained and not failed and (last.partition, last.offset) not in letters
        ok = ok and await target.processed(topics, good)
        tally.add(Outcome.OK if ok else Outcome.UNCLEAR, "" if ok else "valid record after the fuzz not processed")
    finally:
        await app.stop()
    tally.save()
    return tally


def _judge(item: Sent, letters: dict[tuple[int, int], str], target: TopicTarget, healthy: bool) -> tuple[Outcome, str]:
    where = (item.partition, item.offset)
    shown = repr(item.value[:80]) if item.value is not None else "None"
    if not healthy:
        return Outcome.UNCLEAR, f"consumer stalled or failed; frame {shown}"
    if where in letters:
        reason = letters[where]
        return (Outcome.DEAD_LETTER, "") if reason.strip() else (Outcome.UNCLEAR, f"dead letter without reason {shown}")
    if item.decoded is None or target.must_reject(item.decoded):
        fields = {k: v for k, v in (item.decoded or {}).items() if not isinstance(v, str) or len(v) < 80}
        return Outcome.UNCLEAR, f"bad frame neither processed nor dead-lettered: {shown} {fields}"
    return Outcome.OK, ""


def _decode(serde: AvroSerde, value: bytes | None) -> dict[str, Any] | None:
    try:
        return serde.deserialize(value) if value is not None else None
    except SerializationError:
        return None


async def _send(
    topics: PrefixedTopics, topic: str, serde: AvroSerde, values: list[bytes | None], keys: list[bytes | None]
) -> list[Sent]:
    producer = AIOKafkaProducer(bootstrap_servers=topics.bootstrap, max_request_size=MAX_FRAME + 100_000)
    await producer.start()
    try:
        futures = [await producer.send(topic, value=v, key=k) for v, k in zip(values, keys)]
        done = [await f for f in futures]
    finally:
        await producer.stop()
    return [Sent(v, m.partition, m.offset, _decode(serde, v)) for v, m in zip(values, done)]


async def send_records(topics: PrefixedTopics, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    """(key, value) records into a catalogue topic, acknowledged."""
    producer = AIOKafkaProducer(bootstrap_servers=topics.bootstrap)
    await producer.start()
    try:
        for future in [await producer.send(topics.name(topic), value=v, key=k) for k, v in records]:
            await future
    finally:
        await producer.stop()


async def read_vectors(topics: PrefixedTopics, expected: int) -> list[dict[str, Any]]:
    """The feature vectors of the features topic, decoded: `expected` of them, and one more if there is one."""
    name = topics.name("kestrel.features.v1")
    serde = serde_for_topic(FileSchemaRegistry(), name, "feature_vector")
    found = await topics.read(name, expected, timeout_s=60)
    with contextlib.suppress(TimeoutError):  # a vector too many (a retry counted) shows up here
        found = await topics.read(name, expected + 1, timeout_s=3)
    return [serde.deserialize(r.value) for r in found]


async def _drained(bootstrap: str, group: str, topic: str) -> bool:
    """Whether the group committed up to the end of every partition of the topic within DRAIN_S."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    await reader.start()
    try:
        parts = [TopicPartition(topic, p) for p in await _partitions(admin, topic)]
        ends = await reader.end_offsets(parts)
        deadline = time.monotonic() + DRAIN_S
        while time.monotonic() < deadline:
            committed = await admin.list_consumer_group_offsets(group, partitions=parts)
            if all(committed.get(tp) is not None and committed[tp].offset >= ends[tp] for tp in parts if ends[tp]):
                return True
            await asyncio.sleep(0.5)
        return False
    finally:
        await reader.stop()
        await admin.close()


async def _partitions(admin: AIOKafkaAdminClient, topic: str) -> list[int]:
    (described,) = await admin.describe_topics([topic])
    return sorted(p["partition"] for p in described["partitions"])


async def _dead_letters(topics: PrefixedTopics, service: str, original: str) -> dict[tuple[int, int], str]:
    """(partition, offset) -> reason of every dead letter of this service about the original topic."""
    name = topics.name(dead_letter_topic(service))
    serde = serde_for_topic(FileSchemaRegistry(), name, "dead_letter")
    reader = AIOKafkaConsumer(name, bootstrap_servers=topics.bootstrap, auto_offset_reset="earliest")
    await reader.start()
    try:
        out: dict[tuple[int, int], str] = {}
        quiet_until = time.monotonic() + 2.0
        while time.monotonic() < quiet_until:
            for records in (await reader.getmany(timeout_ms=300)).values():
                quiet_until = time.monotonic() + 1.0
                for record in records:
                    letter = serde.deserialize(record.value)
                    if letter["original_topic"] == original:
                        out[(letter["partition"], letter["offset"])] = letter["reason"]
        return out
    finally:
        await reader.stop()
