"""Integration helpers: a fixed event set with out-of-order, late and bad records; produce, run, read back."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from kestrel.common.kafka import OutRecord, Producer
from kestrel.common.runtime.app import Watched
from kestrel.common.runtime.runner import ServiceApp
from kestrel.common.topics import load_catalogue
from kestrel.devstack.topics import apply_topics
from kestrel.features.service import SERVICE
from kestrel.features.settings import FeaturesSettings

from .conftest import EVENTS, T0, VECTORS, event

# How far behind the arrival clock an event's time is: mostly in order, some out of order within
# the allowed lateness (5 min), some beyond it, a few a day back.
BEHIND_MS = [0, 4_000, 59_000, 290_000, 400_000, 2 * 86_400_000]
BEHIND_WEIGHTS = [80, 6, 5, 4, 3, 2]
GARBAGE = [b"not avro", b"\x00\x00\x00\x00\x07\x01\x02", b"\x00"]


def fixed_events(n: int, cards: int = 25, seed: int = 3, start: int = 0) -> list[dict[str, Any]]:
    """Events in arrival order; event_time jumps back now and then; one has a NaN amount."""
    rng = random.Random(seed)
    clock, out = T0 + start * 100_000, []
    for i in range(start, start + n):
        clock += rng.choice([0, 5, 200, 1_500, 20_000, 61_000])
        t = clock - rng.choices(BEHIND_MS, BEHIND_WEIGHTS)[0]
        amount = float("nan") if i == start + n // 2 else round(rng.lognormvariate(3, 1.2), 2)
        out.append(
            event(
                i,
                t,
                entity=f"card-{rng.randrange(cards)}",
                amount=amount,
                merchant_id=f"m-{rng.randrange(6)}",
                country=rng.choice(["DE", "DE", "FR", "US"]),
                channel=rng.choice(["pos", "ecommerce"]),
            )
        )
    return out


def with_retries(events: list[dict[str, Any]], seed: int, share: float = 0.25) -> list[dict[str, Any]]:
    """The events with a re-sent copy of some (same record, same event_id): right after the event, or after
    one to eight further events of its card, as a client retrying a timed-out call would."""
    rng = random.Random(seed)
    later: dict[int, list[dict[str, Any]]] = {}
    for i, e in enumerate(events):
        if rng.random() < share:
            after = [j for j in range(i, len(events)) if events[j]["entity_id"] == e["entity_id"]]
            later.setdefault(after[min(rng.choice([0, 0, 1, 3, 8]), len(after) - 1)], []).append(e)
    return [x for i, e in enumerate(events) for x in [e, *later.get(i, [])]]


async def produce(bootstrap: str, topic: str, events: list[dict[str, Any]], garbage: bool = True) -> int:
    """Produce events keyed by entity (arrival order per partition is list order), plus undecodable records."""
    records = [OutRecord(topic, EVENTS.serialize(e), e["entity_id"].encode()) for e in events]
    if garbage:
        for i, value in enumerate(GARBAGE):
            records.insert((i + 1) * len(records) // (len(GARBAGE) + 1), OutRecord(topic, value, b"card-0"))
    producer = Producer({"bootstrap.servers": bootstrap})
    await producer.start()
    try:
        await producer.send_many(records)
    finally:
        await producer.stop()
    return len(GARBAGE) if garbage else 0


@contextlib.asynccontextmanager
async def catalogue(bootstrap: str) -> AsyncIterator[str]:
    """An isolated copy of the topic catalogue under a fresh prefix, deleted afterwards (changelogs too)."""
    prefix = f"t-{uuid4().hex[:10]}."
    await apply_topics(bootstrap, load_catalogue(), prefix=prefix)
    try:
        yield prefix
    finally:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.delete_topics([t for t in await admin.list_topics() if t.startswith(prefix)])
        finally:
            await admin.close()


def app(bootstrap: str, prefix: str, group: str) -> ServiceApp:
    return SERVICE.app(
        FeaturesSettings(
            kafka_bootstrap=bootstrap,
            topic_prefix=prefix,
            group_id=group,
            metrics_port=0,
            health_port=0,
            changelog_replication=1,
            session_timeout_ms=6_000,
            heartbeat_interval_ms=500,
            commit_interval_s=0.2,
            poll_timeout_ms=50,
        )
    )


def worker(app: ServiceApp) -> Any:
    """The stream loop of a running features service."""
    return app.part(Watched).loop


async def read(bootstrap: str, topic: str, expected: int, timeout_s: float = 30.0) -> list[Any]:
    """Every record of the topic from the beginning, once at least `expected` are there."""
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await reader.start()
    try:
        tps = [TopicPartition(topic, p) for p in reader.partitions_for_topic(topic) or await _partitions(reader, topic)]
        reader.assign(tps)
        await reader.seek_to_beginning(*tps)
        out: list[Any] = []
        deadline = asyncio.get_running_loop().time() + timeout_s
        while len(out) < expected and asyncio.get_running_loop().time() < deadline:
            batch = await reader.getmany(timeout_ms=200)
            out += [r for records in batch.values() for r in records]
        await asyncio.sleep(0.3)  # anything beyond the expected count (duplicates) shows up too
        batch = await reader.getmany(timeout_ms=200)
        return out + [r for records in batch.values() for r in records]
    finally:
        await reader.stop()


async def read_vectors(bootstrap: str, topic: str, event_ids: set[str], timeout_s: float = 30.0) -> list[Any]:
    """Every vector on the topic, once there is one for each of `event_ids` (duplicates included)."""
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await reader.start()
    try:
        tps = [TopicPartition(topic, p) for p in await _partitions(reader, topic)]
        reader.assign(tps)
        await reader.seek_to_beginning(*tps)
        out: list[Any] = []
        seen: set[str] = set()
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not event_ids <= seen:
            assert asyncio.get_running_loop().time() < deadline, f"{len(event_ids - seen)} vectors missing"
            batch = [r for records in (await reader.getmany(timeout_ms=200)).values() for r in records]
            out += batch
            seen |= {VECTORS.deserialize(r.value)["event_id"] for r in batch}
        return out
    finally:
        await reader.stop()


async def _partitions(reader: AIOKafkaConsumer, topic: str) -> set[int]:
    await reader._client.force_metadata_update()
    return reader.partitions_for_topic(topic) or set()


async def wait_for(predicate: Any, timeout_s: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)
