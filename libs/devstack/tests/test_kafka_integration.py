"""The embedded broker: idempotent produce, consume in a group with committed offsets."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

pytestmark = pytest.mark.integration


async def test_produce_consume_and_commit(kafka: Any, topic_factory: Any, group_id: str) -> None:
    topic = await topic_factory(partitions=3)
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for i in range(30):
            await producer.send(topic, key=f"k{i % 5}".encode(), value=str(i).encode())
        await producer.flush()
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka.bootstrap, group_id=group_id,
        auto_offset_reset="earliest", enable_auto_commit=False,
    )  # fmt: skip
    await consumer.start()
    try:
        values: list[int] = []
        while len(values) < 30:
            batches = await consumer.getmany(timeout_ms=5000)
            assert batches, "no records within 5 s"
            values += [int(r.value) for records in batches.values() for r in records]
        await consumer.commit()
        committed = {p: await consumer.committed(TopicPartition(topic, p)) for p in range(3)}
    finally:
        await consumer.stop()
    assert sorted(values) == list(range(30))
    assert sum(committed.values()) == 30
