"""Which Kafka client drains a topic in batches cheaper here: aiokafka `getmany` (what BatchConsumer uses)
against confluent-kafka `consume(num_messages)`, same topic, same batch size, each its own consumer group."""

from __future__ import annotations

import asyncio
import time
import uuid

import confluent_kafka
from aiokafka import AIOKafkaConsumer

from bench.report import Row

GROUP = "inference"
AIOKAFKA = "aiokafka getmany, drain the scorer's input"
CONFLUENT = "confluent-kafka consume(num_messages), drain the scorer's input"


async def aiokafka_rate(bootstrap: str, topic: str, n: int, batch: int) -> tuple[float, float]:
    """(records/s from the first batch on, CPU seconds per record) for getmany with BatchConsumer's options,
    every record's value read (as a handler would)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=1 << 20,
    )
    await consumer.start()
    try:
        seen, start, cpu = 0, 0.0, 0.0
        while seen < n:
            got = await consumer.getmany(timeout_ms=200, max_records=batch)
            if got and not seen:
                start, cpu = time.perf_counter(), time.process_time()
            seen += sum(len([r.value for r in records]) for records in got.values())
        return n / (time.perf_counter() - start), (time.process_time() - cpu) / n
    finally:
        await consumer.stop()


def confluent_rate(bootstrap: str, topic: str, n: int, batch: int) -> tuple[float, float]:
    """The same with confluent-kafka's consume(num_messages), every message's value read; it runs in its own
    thread while the bench's loop waits, so CPU time is librdkafka's threads and this one."""
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "max.partition.fetch.bytes": 1 << 20,
        }
    )
    consumer.subscribe([topic])
    try:
        seen, start, cpu = 0, 0.0, 0.0
        while seen < n:
            got = consumer.consume(num_messages=batch, timeout=0.2)
            if got and not seen:
                start, cpu = time.perf_counter(), time.process_time()
            seen += len([m.value() for m in got if m.error() is None])
        return n / (time.perf_counter() - start), (time.process_time() - cpu) / n
    finally:
        consumer.close()


async def rows(bootstrap: str, topic: str, n: int, batch: int) -> list[Row]:
    """Both clients, one after the other, on the same pre-filled topic."""
    aio = await aiokafka_rate(bootstrap, topic, n, batch)
    conf = await asyncio.to_thread(confluent_rate, bootstrap, topic, n, batch)
    note = f"{n:,} records, batches of up to {batch:,}, values read, no decode; process CPU"
    return [
        Row(GROUP, AIOKAFKA, aio[0], notes=f"{note} {aio[1] * 1e6:.2f} us/record", extra={"cpu_us": aio[1] * 1e6}),
        Row(
            GROUP,
            CONFLUENT,
            conf[0],
            baseline=AIOKAFKA,
            notes=f"{note} {conf[1] * 1e6:.2f} us/record (librdkafka's threads included)",
            extra={"cpu_us": conf[1] * 1e6},
        ),
    ]
