"""Producer and BatchConsumer against a real broker: acks, commit-after-processing, dead letters, retries."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from prometheus_client import REGISTRY

from kestrel.common.avro import AvroSerde, load_schema
from kestrel.common.errors import UnavailableError
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

    def __init__(self, failures: int = 0, error: Exception | None = None) -> None:
        self.seen: list[bytes] = []
        self.failures = failures
        self.error = error or ConnectionError("sink down")
        self.log_context: list[dict] = []

    async def __call__(self, records: Sequence[ConsumerRecord]) -> list[Rejection]:
        self.log_context.append(structlog.contextvars.get_contextvars())
        if self.failures:
            self.failures -= 1
            raise self.error
        self.seen += [r.value for r in records if not r.value.startswith(b"bad")]
        return [Rejection(r, "starts with bad") for r in records if r.value.startswith(b"bad")]


def consumer(kafka, topic, group, handler, producer, dlq, dead_letters=None, name="consumer") -> BatchConsumer:
    return BatchConsumer(
        [topic],
        group,
        handler,
        dead_letters or DeadLetterPublisher(producer, "test", dead_letter_serde(dlq).serialize, dlq),
        {"bootstrap_servers": kafka.bootstrap},
        ConsumerOptions(
            max_batch=50, retry_initial_s=0.05, retry_max_s=0.2, session_timeout_ms=6000, heartbeat_interval_ms=500
        ),
        name=name,
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


async def test_a_batch_that_keeps_failing_is_dead_lettered_with_the_error_and_the_partition_moves_on(
    kafka, producer, topic_factory, group_id
):
    topic, dlq = await topic_factory(partitions=1), await topic_factory(partitions=1)
    await producer.send_many(OutRecord(topic, b"a%d" % i, b"%d" % i) for i in range(20))
    name = f"c-{group_id}"
    c = consumer(kafka, topic, group_id, Recorder(failures=10**6), producer, dlq, name=name)
    await c.start()
    await wait_for(lambda: c.processed == 20, timeout_s=20)
    await c.stop()
    letters = [dead_letter_serde(dlq).deserialize(m.value) for m in await read_all(kafka.bootstrap, dlq, 20)]
    assert sorted(d["value"] for d in letters) == sorted(b"a%d" % i for i in range(20))
    assert all(d["error_type"] == "retries_exhausted" and "ConnectionError: sink down" in d["reason"] for d in letters)
    assert REGISTRY.get_sample_value("kestrel_consumer_batches_dead_lettered_total", {"consumer": name}) >= 1
    await producer.send_many(OutRecord(topic, b"b%d" % i, b"%d" % i) for i in range(5))
    after = Recorder()
    c = consumer(kafka, topic, group_id, after, producer, dlq)
    await c.start()
    await wait_for(lambda: c.processed == 5)
    await c.stop()
    assert sorted(after.seen) == sorted(b"b%d" % i for i in range(5))  # the dead-lettered batch was committed


async def test_a_dependency_outage_pauses_the_batch_however_long_and_dead_letters_nothing(
    kafka, producer, topic_factory, group_id
):
    topic, dlq = await topic_factory(partitions=1), await topic_factory(partitions=1)
    await producer.send_many(OutRecord(topic, b"a%d" % i, b"%d" % i) for i in range(20))
    handler = Recorder(failures=12, error=UnavailableError("redis down"))  # more than max_attempts
    c = consumer(kafka, topic, group_id, handler, producer, dlq)
    await c.start()
    await wait_for(lambda: c.processed == 20)
    await c.stop()
    assert sorted(handler.seen) == sorted(b"a%d" % i for i in range(20)) and c.rejected == 0


class BrokenDeadLetters:
    """A dead-letter topic that cannot be written: `error` is raised while `down`."""

    def __init__(self, error: Exception) -> None:
        self.error, self.down, self.published = error, True, 0

    async def publish(self, rejections: Sequence[Rejection]) -> None:
        if rejections and self.down:
            raise self.error
        self.published += len(rejections)


async def test_a_failing_batch_waits_while_its_dead_letter_topic_is_unavailable_then_moves_on(
    kafka, producer, topic_factory, group_id
):
    topic, dlq = await topic_factory(partitions=1), await topic_factory(partitions=1)
    await producer.send_many(OutRecord(topic, b"a%d" % i, b"%d" % i) for i in range(20))
    dead_letters = BrokenDeadLetters(UnavailableError("kafka delivery failed: all brokers down"))
    c = consumer(kafka, topic, group_id, Recorder(failures=10**6), producer, dlq, dead_letters)
    await c.start()
    await asyncio.sleep(4)  # well past max_attempts
    assert c.processed == 0  # nothing committed while the dead letters cannot be written
    dead_letters.down = False
    await wait_for(lambda: c.processed == 20)
    await c.stop()
    assert dead_letters.published == 20


async def test_a_failing_batch_that_cannot_be_dead_lettered_is_not_committed_and_ends_the_loop(
    kafka, producer, topic_factory, group_id
):
    topic, dlq = await topic_factory(partitions=1), await topic_factory(partitions=1)
    await producer.send_many(OutRecord(topic, b"a%d" % i, b"%d" % i) for i in range(20))
    dead_letters = BrokenDeadLetters(ConnectionError("dead-letter topic unreachable"))
    c = consumer(kafka, topic, group_id, Recorder(failures=10**6), producer, dlq, dead_letters)
    await c.start()
    with pytest.raises(ConnectionError, match="dead-letter topic unreachable"):
        await asyncio.wait_for(c.wait(), 20)  # the loop ends, so its watch stops the service for a restart
    await c.stop()
    again = Recorder()
    c = consumer(kafka, topic, group_id, again, producer, dlq)
    await c.start()
    await wait_for(lambda: c.processed == 20)
    await c.stop()
    assert sorted(again.seen) == sorted(b"a%d" % i for i in range(20))  # nothing was lost


async def test_stop_while_a_batch_is_retried_abandons_it_uncommitted(kafka, producer, topic_factory, group_id):
    topic, dlq = await topic_factory(partitions=1), await topic_factory(partitions=1)
    await producer.send_many(OutRecord(topic, b"a%d" % i, b"%d" % i) for i in range(20))
    failing = Recorder(failures=2)
    c = consumer(kafka, topic, group_id, failing, producer, dlq)
    await c.start()
    await wait_for(lambda: failing.failures < 2)
    await c.stop()
    assert c.processed == 0
    again = Recorder()
    c = consumer(kafka, topic, group_id, again, producer, dlq)
    await c.start()
    await wait_for(lambda: c.processed == 20)
    await c.stop()
    assert sorted(again.seen) == sorted(b"a%d" % i for i in range(20))


async def test_each_batch_is_handled_with_its_consumer_and_offsets_bound_for_logging(
    kafka, producer, topic_factory, group_id
):
    topic, dlq = await topic_factory(partitions=1), await topic_factory(partitions=1)
    await producer.send_many(OutRecord(topic, b"a%d" % i, b"k") for i in range(120))
    handler = Recorder()
    c = consumer(kafka, topic, group_id, handler, producer, dlq, name="scorer")
    await c.start()
    await wait_for(lambda: c.processed == 120)
    await c.stop()
    ranges = [ctx["offsets"].removeprefix(f"{topic}[0]:") for ctx in handler.log_context]
    assert all(ctx["consumer"] == "scorer" for ctx in handler.log_context)
    assert ranges[0].startswith("0-") and ranges[-1].endswith("-119")  # batches of at most max_batch=50
    assert "offsets" not in structlog.contextvars.get_contextvars()  # unbound after each batch


async def read_all(bootstrap: str, topic: str, expected: int) -> list:
    reader = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
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


async def test_consumer_lag_is_reported_per_partition_and_reaches_zero(kafka, producer, topic_factory, group_id):
    from prometheus_client import REGISTRY

    topic, dlq = await topic_factory(partitions=1), await topic_factory(partitions=1)
    await producer.send_many(OutRecord(topic, b"a%d" % i, b"k") for i in range(120))
    handler = Recorder()
    c = consumer(kafka, topic, group_id, handler, producer, dlq, name="lagged")
    await c.start()
    await wait_for(lambda: c.processed == 120)
    await c.stop()
    labels = {"consumer": "lagged", "topic": topic, "partition": "0"}
    assert REGISTRY.get_sample_value("kestrel_consumer_lag_records", labels) == 0


async def test_stop_right_after_the_last_batch_leaves_every_handled_record_committed(
    kafka, producer, topic_factory, group_id
):
    """Commits are answered while later batches are handled (and coalesce while one is in flight); stop()
    still waits until the last handled batch is committed."""
    topic, dlq = await topic_factory(partitions=2), await topic_factory(partitions=1)
    await producer.send_many(OutRecord(topic, b"a%d" % i, b"%d" % i) for i in range(300))
    handler, all_seen = Recorder(), asyncio.Event()

    async def handle(records: Sequence[ConsumerRecord]) -> list[Rejection]:
        rejections = await handler(records)
        if len(handler.seen) == 300:
            all_seen.set()
        return rejections

    c = BatchConsumer(
        [topic],
        group_id,
        handle,
        DeadLetterPublisher(producer, "test", dead_letter_serde(dlq).serialize, dlq),
        {"bootstrap_servers": kafka.bootstrap},
        ConsumerOptions(max_batch=1, session_timeout_ms=6000, heartbeat_interval_ms=500),
    )
    await c.start()
    await asyncio.wait_for(all_seen.wait(), 30)
    await c.stop()  # at once: the last batches' commit may still be in flight, or not yet sent
    reader = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap, group_id=group_id, enable_auto_commit=False)
    await reader.start()
    try:
        parts = [TopicPartition(topic, p) for p in (0, 1)]
        ends = await reader.end_offsets(parts)
        assert {tp: await reader.committed(tp) for tp in parts} == ends
        assert sum(ends.values()) == 300
    finally:
        await reader.stop()
