"""Producer and BatchConsumer against a real broker: acks, commit-after-processing, dead letters, retries."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord

from kestrel.common.avro import AvroSerde, load_schema
from kestrel.common.kafka import (
    BatchConsumer,
    ConsumerOptions,
    DeadLetterPublisher,
    OutRecord,
    Producer,
    Rejection,
)
from kestrel.common.registry import FileSchemaRegistry

pytestmark = pytest.mark.integration


@pytest.fixture
async def producer(kafka):
    p = Producer({"bootstrap.servers": kafka.bootstrap})
    await p.start()
    yield p
    await p.stop()


def dead_letter_serde(topic: str) -> AvroSerde:
    return AvroSerde(FileSchemaRegistry(), f"{topic}-value", load_schema("dead_letter"))


async def wait_for(predicate, timeout_s: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def test_send_many_acks_every_record_in_partition_order(producer, topic_factory):
    topic = await topic_factory(partitions=1)
    deliveries = await producer.send_many(OutRecord(topic, b"v%d" % i, b"k") for i in range(500))
    assert [d.offset for d in deliveries] == list(range(500))


async def test_keys_land_where_java_and_aiokafka_put_them(producer, topic_factory):
    from aiokafka.partitioner import DefaultPartitioner  # murmur2, as the Java client

    topic = await topic_factory(partitions=6)
    keys = [f"card-{i}".encode() for i in range(50)]
    deliveries = await producer.send_many(OutRecord(topic, b"v", k) for k in keys)
    expected = [DefaultPartitioner()(k, list(range(6)), list(range(6))) for k in keys]
    assert [d.partition for d in deliveries] == expected


class Recorder:
    """A handler that rejects records whose value starts with b'bad' and can be told to fail."""

    def __init__(self, failures: int = 0) -> None:
        self.seen: list[bytes] = []
        self.failures = failures

    async def __call__(self, records: Sequence[ConsumerRecord]) -> list[Rejection]:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("sink down")
        self.seen += [r.value for r in records if not r.value.startswith(b"bad")]
        return [Rejection(r, "starts with bad") for r in records if r.value.startswith(b"bad")]


def consumer(kafka, topic, group, handler, producer, dlq) -> BatchConsumer:
    return BatchConsumer(
        [topic], group, handler, DeadLetterPublisher(producer, "test", dead_letter_serde(dlq).serialize, dlq),
        {"bootstrap_servers": kafka.bootstrap},
        ConsumerOptions(max_batch=50, retry_initial_s=0.05, session_timeout_ms=6000, heartbeat_interval_ms=500),
    )


async def test_rejections_dead_lettered_with_source_and_reason(kafka, producer, topic_factory, group_id):
    topic, dlq = await topic_factory(partitions=2), await topic_factory(partitions=1)
    values = [b"ok%d" % i if i % 10 else b"bad%d" % i for i in range(100)]
    await producer.send_many(OutRecord(topic, v, b"%d" % i) for i, v in enumerate(values))
    handler = Recorder(failures=2)  # two transient failures first: the batch is retried, not lost
    c = consumer(kafka, topic, group_id, handler, producer, dlq)
    await c.start()
    await wait_for(lambda: c.processed == 100)
    await c.stop()
    assert sorted(handler.seen) == sorted(v for v in values if not v.startswith(b"bad"))
    letters = await read_all(kafka.bootstrap, dlq, 10)
    decoded = [dead_letter_serde(dlq).deserialize(m.value) for m in letters]
    assert sorted(d["value"] for d in decoded) == sorted(v for v in values if v.startswith(b"bad"))
    assert {d["original_topic"] for d in decoded} == {topic}
    assert all(d["reason"] == "starts with bad" and d["service"] == "test" for d in decoded)


async def test_restart_resumes_after_committed_offsets_without_loss(kafka, producer, topic_factory, group_id):
    topic, dlq = await topic_factory(partitions=3), await topic_factory(partitions=1)
    await producer.send_many(OutRecord(topic, b"a%d" % i, b"%d" % i) for i in range(300))
    first = Recorder()
    c = consumer(kafka, topic, group_id, first, producer, dlq)
    await c.start()
    await wait_for(lambda: c.processed == 300)
    await c.stop()
    await producer.send_many(OutRecord(topic, b"b%d" % i, b"%d" % i) for i in range(200))
    second = Recorder()
    c = consumer(kafka, topic, group_id, second, producer, dlq)
    await c.start()
    await wait_for(lambda: c.processed == 200)
    await asyncio.sleep(1)  # nothing already committed may come again
    await c.stop()
    assert sorted(second.seen) == sorted(b"b%d" % i for i in range(200))


async def read_all(bootstrap: str, topic: str, expected: int) -> list:
    reader = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                              enable_auto_commit=False)
    await reader.start()
    out: list = []
    try:
        for _ in range(40):
            batch = await reader.getmany(timeout_ms=250)
            out += [m for part in batch.values() for m in part]
            if len(out) >= expected:
                break
    finally:
        await reader.stop()
    return out
