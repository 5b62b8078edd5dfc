"""Ingest rows: PublishBatch, unary Publish and direct produce, each next to raw confluent-kafka produce."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import confluent_kafka
import grpc

from bench.fixtures import fresh_catalogue, ingest_process, sample_events
from bench.report import Row, latency_ms
from kestrel.api.v1 import ingest_pb2, ingest_pb2_grpc
from kestrel.common.convert import record_to_event
from kestrel.common.grpc.health import wait_serving
from kestrel.common.kafka import OutRecord, Producer
from kestrel.common.registry import FileSchemaRegistry
from kestrel.common.serde import serde_for_topic

RAW = "raw confluent-kafka produce"


def _raw_config(bootstrap: str) -> dict[str, Any]:
    # Same delivery guarantees as ours: idempotent, acks=all, same batching.
    return {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 2,
        "compression.type": "lz4",
    }


def raw_produce(bootstrap: str, topic: str, values: list[bytes], keys: list[bytes]) -> float:
    producer = confluent_kafka.Producer(_raw_config(bootstrap))
    start = time.perf_counter()
    for i, (value, key) in enumerate(zip(values, keys)):
        while True:
            try:
                producer.produce(topic, value, key)
                break
            except BufferError:
                producer.poll(0.001)
        if i % 1000 == 0:  # serving delivery reports per message would slow the baseline down
            producer.poll(0)
    producer.flush(60)
    return len(values) / (time.perf_counter() - start)


def raw_ack_latency(bootstrap: str, topic: str, values: list[bytes]) -> list[float]:
    producer = confluent_kafka.Producer({**_raw_config(bootstrap), "linger.ms": 0})
    samples = []
    for value in values:
        start = time.perf_counter()
        producer.produce(topic, value, b"k")
        producer.flush(10)
        samples.append(time.perf_counter() - start)
    return samples


async def kestrel_produce(bootstrap: str, topic: str, values: list[bytes], keys: list[bytes]) -> float:
    """Our Producer on the same pre-serialized values, 1,000 per acked batch."""
    producer = Producer({"bootstrap.servers": bootstrap})
    await producer.start()
    records = [OutRecord(topic, v, k) for v, k in zip(values, keys)]
    start = time.perf_counter()
    for i in range(0, len(records), 1000):
        await producer.send_many(records[i : i + 1000])
    rate = len(records) / (time.perf_counter() - start)
    await producer.stop()
    return rate


def avro_rate(serde: Any, records: list[dict[str, Any]]) -> float:
    start = time.perf_counter()
    serde.serialize_many(records)
    return len(records) / (time.perf_counter() - start)


async def _drive(concurrency: int, jobs: list[Any], call: Any) -> tuple[float, list[float]]:
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    samples: list[float] = []

    async def worker() -> None:
        while not queue.empty():
            job = queue.get_nowait()
            start = time.perf_counter()
            await call(job)
            samples.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - start, samples


async def run(bootstrap: str, workdir: Path, quick: bool) -> list[Row]:
    n = 50_000 if quick else 200_000
    prefix = await fresh_catalogue(bootstrap)
    topic = f"{prefix}kestrel.events.v1"
    serde = serde_for_topic(FileSchemaRegistry(), topic, "event")
    records = sample_events(n)
    values = serde.serialize_many(records)
    keys = [r["entity_id"].encode() for r in records]
    rows = [
        Row(
            "ingest",
            RAW,
            await asyncio.to_thread(raw_produce, bootstrap, topic, values, keys),
            notes=f"{n:,} pre-serialized Avro events, idempotent, acks=all",
        )
    ]
    rows.append(
        Row(
            "ingest",
            "kestrel Producer (batch acks)",
            await kestrel_produce(bootstrap, topic, values, keys),
            baseline=RAW,
            notes="same values; every record's partition/offset reported",
        )
    )
    rows.append(
        Row("ingest", "Avro serialize (Confluent framing)", avro_rate(serde, records), notes="CPU only, no broker")
    )
    p50, p99 = latency_ms(await asyncio.to_thread(raw_ack_latency, bootstrap, topic, values[:500]))
    rows.append(Row("ingest", "raw produce, one event, wait for ack", None, p50, p99))
    rows += await _grpc_rows(bootstrap, prefix, workdir, records, quick)
    return rows


async def _grpc_rows(
    bootstrap: str, prefix: str, workdir: Path, records: list[dict[str, Any]], quick: bool
) -> list[Row]:
    events = [record_to_event(r) for r in records]
    rows = []
    with ingest_process(bootstrap, prefix, workdir / "ingest.log") as address:
        await wait_serving(address)
        async with grpc.aio.insecure_channel(address) as channel:
            stub = ingest_pb2_grpc.IngestServiceStub(channel)
            batches = [ingest_pb2.PublishBatchRequest(events=events[i : i + 500]) for i in range(0, len(events), 500)]
            elapsed, samples = await _drive(4, batches, stub.PublishBatch)
            rows.append(
                Row(
                    "ingest",
                    "gRPC PublishBatch (500/call, 4 in flight)",
                    len(events) / elapsed,
                    *latency_ms(samples),
                    baseline=RAW,
                    notes="ingest in its own process; per-call latency",
                )
            )
            unary = [ingest_pb2.PublishRequest(event=e) for e in events[: 5_000 if quick else 20_000]]
            elapsed, samples = await _drive(64, unary, stub.Publish)
            rows.append(
                Row(
                    "ingest",
                    "gRPC Publish unary, concurrency 64",
                    len(unary) / elapsed,
                    *latency_ms(samples),
                    baseline=RAW,
                )
            )
            elapsed, samples = await _drive(1, unary[:1000], stub.Publish)
            rows.append(
                Row(
                    "ingest",
                    "gRPC Publish unary, concurrency 1",
                    1000 / elapsed,
                    *latency_ms(samples),
                    notes="compare p50/p99 with raw one-event ack",
                )
            )
    return rows
