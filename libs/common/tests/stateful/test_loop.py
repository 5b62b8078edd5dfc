"""The stateful loop with fake Kafka clients: commit order, partition ownership, rewind after a failure."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import TopicPartition
from prometheus_client import REGISTRY

from kestrel.common.stateful import KeyedStateStore, LoopOptions, StatefulLoop

from .conftest import (
    TOPIC,
    CountCodec,
    CountingProcessor,
    FakeChangelog,
    FakeConsumer,
    FakeLetters,
    FakeProducer,
    Journal,
    records,
)

P0, P1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)
LAG = "kestrel_consumer_lag_records"


@pytest.fixture
async def make_rig():
    """A started loop over fakes, stopped afterwards; options override the test defaults."""
    loops: list[StatefulLoop] = []

    async def make(**options: Any) -> tuple[StatefulLoop, FakeConsumer, FakeProducer, Journal]:
        journal = Journal()
        store = KeyedStateStore(CountCodec(), "test", evict_after_ms=86_400_000)
        consumer, changelog, producer = FakeConsumer(journal, {P0, P1}), FakeChangelog(journal), FakeProducer(journal)
        options = {"poll_timeout_ms": 10, "commit_interval_s": 0.05, "retry_max_s": 0.05} | options
        loop = StatefulLoop(
            "test",
            lambda: consumer,
            TOPIC,
            CountingProcessor(store),
            store,  # type: ignore[arg-type]
            changelog,
            producer,
            FakeLetters(),
            LoopOptions(**options),
        )  # type: ignore[arg-type]
        await loop.start()
        loops.append(loop)
        return loop, consumer, producer, journal

    yield make
    for loop in loops:
        await loop.stop()


@pytest.fixture
async def rig(make_rig):
    return await make_rig()


def counts(producer: FakeProducer) -> list[int]:
    return [int(r.value) for r in producer.sent]


async def settle(predicate: Any) -> None:
    for _ in range(200):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_commit_point_acks_then_changelog_then_offsets(rig) -> None:
    loop, consumer, _, journal = rig
    await consumer.batches.put({P0: records(0, range(3))})
    await settle(lambda: any(isinstance(j, tuple) and j[0] == "commit" for j in journal))
    first_commit = next(i for i, j in enumerate(journal) if isinstance(j, tuple) and j[0] == "commit")
    assert journal[first_commit - 2 : first_commit + 1] == ["acks", ("changelog", 1), ("commit", {0: 3})]


async def test_lag_is_the_high_watermark_the_fetch_saw_minus_the_next_offset(rig) -> None:
    loop, consumer, _, _ = rig
    consumer.highwaters[P0] = 10
    await consumer.batches.put({P0: records(0, range(3)), P1: records(1, range(2))})
    await settle(lambda: loop.processed == 5)
    lag = {p: REGISTRY.get_sample_value(LAG, {"consumer": "test", "topic": TOPIC, "partition": p}) for p in "01"}
    assert lag == {"0": 7.0, "1": None}  # no high watermark seen yet for partition 1: nothing reported


async def test_records_of_partitions_no_longer_owned_are_dropped(rig) -> None:
    loop, consumer, producer, _ = rig
    consumer._assignment = {P0}  # P1 moved away while its records were being fetched
    await consumer.batches.put({P0: records(0, range(2)), P1: records(1, range(2))})
    await settle(lambda: loop.processed == 2)
    assert {r.key for r in producer.sent} == {b"key-0"}


async def test_records_fetched_twice_around_a_rebalance_count_once(rig) -> None:
    loop, consumer, producer, _ = rig
    await consumer.batches.put({P0: records(0, range(3))})
    await consumer.batches.put({P0: records(0, range(1, 4))})  # refetched from an older position
    await settle(lambda: loop.processed == 6)
    assert counts(producer) == [1, 2, 3, 4]


async def test_a_failed_batch_rewinds_to_the_last_commit_point(rig) -> None:
    loop, consumer, producer, journal = rig
    await consumer.batches.put({P0: records(0, range(2))})
    await settle(lambda: ("commit", {0: 2}) in journal)
    producer.fail = 1  # the next batch's outputs are never acknowledged
    await consumer.batches.put({P0: records(0, range(2, 4))})
    await settle(lambda: ("seek", 0, 2) in journal)
    assert ("restore", [0, 1]) in journal[journal.index(("commit", {0: 2})) :]
    assert ("commit", {0: 4}) not in journal
    await consumer.batches.put({P0: records(0, range(2, 4))})  # the consumer delivers them again
    await settle(lambda: ("commit", {0: 4}) in journal)
    assert counts(producer) == [1, 2, 3, 4, 3, 4]  # recomputed from the restored state: the same outputs again


@pytest.mark.parametrize("leave", ["revoke", "stop"])
async def test_after_a_failed_batch_neither_revocation_nor_stop_commits_past_it(make_rig, leave: str) -> None:
    loop, consumer, producer, journal = await make_rig(retry_min_s=30.0)  # still backing off when partitions go
    await consumer.batches.put({P0: records(0, range(2))})
    await settle(lambda: ("commit", {0: 2}) in journal)
    producer.fail = 1  # the outputs of offsets 2-3 are never acknowledged (outage past the delivery timeout)
    await consumer.batches.put({P0: records(0, range(2, 4))})
    await settle(lambda: journal.count("acks") == 2)
    failed_at = len(journal)
    await (loop.on_revoked({P0, P1}) if leave == "revoke" else asyncio.wait_for(loop.stop(), 5))
    # The changelog would hold state whose outputs were never delivered, and the offsets would skip the events.
    assert [j for j in journal[failed_at:] if j[0] in ("changelog", "commit")] == []


def test_offset_ranges_name_first_and_last_offset_per_partition() -> None:
    from types import SimpleNamespace

    from kestrel.common.kafka.context import offset_ranges

    records = [SimpleNamespace(topic="ev", partition=p, offset=o) for p, o in [(3, 7), (0, 12), (0, 10), (0, 19)]]
    assert offset_ranges(records) == "ev[0]:10-19 ev[3]:7-7"
    again = [
        *records,
        SimpleNamespace(topic="ev", partition=3, offset=2),
        SimpleNamespace(topic="ev", partition=0, offset=25),
    ]
    assert offset_ranges(again) == "ev[0]:10-25 ev[3]:2-7"  # a partition seen again later in the batch
