"""Ingest against a real Kafka broker: acks, per-item rejections, dead letters, broker outage."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
from aiokafka import AIOKafkaConsumer
from confluent_kafka import KafkaError
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import REGISTRY

from kestrel.api.v1 import event_pb2, ingest_pb2, ingest_pb2_grpc
from kestrel.common.grpc.server import GrpcServer
from kestrel.common.registry import FileSchemaRegistry
from kestrel.common.runtime.consumer import CheckedProducer
from kestrel.common.runtime.runner import ServiceApp
from kestrel.common.serde import serde_for_topic
from kestrel.common.topics import load_catalogue
from kestrel.devstack.kafka import KafkaBroker
from kestrel.devstack.topics import apply_topics
from kestrel.ingest.service import SERVICE
from kestrel.ingest.settings import IngestSettings

pytestmark = pytest.mark.integration


def make_event(i: int = 0, **overrides: object) -> event_pb2.Event:
    event = event_pb2.Event(
        event_id=f"e-{uuid.uuid4().hex}",
        entity_id=f"card-{i % 7}",
        amount=10.0 + i,
        currency="EUR",
        merchant_id="m-1",
        merchant_category="5411",
        country="DE",
        channel="pos",
        attributes={"i": str(i)},
    )
    event.event_time.FromMilliseconds(int(time.time() * 1000))
    for key, value in overrides.items():
        setattr(event, key, value)
    return event


async def start_ingest(
    bootstrap: str, stop_event: asyncio.Event | None = None, **overrides: object
) -> tuple[ServiceApp, str]:
    prefix = f"t-{uuid.uuid4().hex[:10]}."
    await apply_topics(bootstrap, load_catalogue(), prefix=prefix)
    settings = IngestSettings(
        kafka_bootstrap=bootstrap, topic_prefix=prefix, grpc_host="127.0.0.1", grpc_port=0, metrics_port=0, **overrides
    )
    app = SERVICE.app(settings, stop_event)
    await app.start()
    return app, prefix


@pytest.fixture
async def ingest(kafka) -> AsyncIterator[tuple[ingest_pb2_grpc.IngestServiceStub, ServiceApp, str]]:
    app, prefix = await start_ingest(kafka.bootstrap)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.part(GrpcServer).port}") as channel:
        yield ingest_pb2_grpc.IngestServiceStub(channel), app, prefix
    await app.stop()


async def read_topic(bootstrap: str, topic: str, expected: int, timeout_s: float = 15.0) -> list:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"t-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(records) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            records += [r for part in batch.values() for r in part]
        extra = await consumer.getmany(timeout_ms=500)  # nothing more than expected may be there
        records += [r for part in extra.values() for r in part]
    finally:
        await consumer.stop()
    return records


async def test_publish_acknowledged_event_is_in_topic_with_avro_and_key(ingest, kafka):
    stub, _, prefix = ingest
    event = make_event(3)
    reply = await stub.Publish(ingest_pb2.PublishRequest(event=event))
    assert reply.event_id == event.event_id
    (record,) = await read_topic(kafka.bootstrap, f"{prefix}kestrel.events.v1", 1)
    assert (record.partition, record.offset) == (reply.partition, reply.offset)
    assert record.key == event.entity_id.encode()
    value = serde_for_topic(FileSchemaRegistry(), record.topic, "event").deserialize(record.value)
    assert value["event_id"] == event.event_id and value["amount"] == event.amount
    assert value["event_time"] == event.event_time.ToMilliseconds()
    assert value["attributes"] == {"i": "3"}


async def test_invalid_event_names_fields_and_is_dead_lettered_not_published(ingest, kafka):
    stub, _, prefix = ingest
    before = REGISTRY.get_sample_value("kestrel_ingest_rejections_total", {"field": "event.currency"}) or 0
    bad = make_event(amount=-3.0, currency="euro")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Publish(ingest_pb2.PublishRequest(event=bad))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "event.amount: must be >= 0" in err.value.details()
    assert "event.currency" in err.value.details()
    assert REGISTRY.get_sample_value("kestrel_ingest_rejections_total", {"field": "event.currency"}) == before + 1
    (dead,) = await read_topic(kafka.bootstrap, f"{prefix}kestrel.dlq.ingest.v1", 1)
    letter = serde_for_topic(FileSchemaRegistry(), dead.topic, "dead_letter").deserialize(dead.value)
    assert event_pb2.Event.FromString(letter["value"]) == bad
    assert "event.amount" in letter["reason"] and letter["service"] == "ingest"
    assert await read_topic(kafka.bootstrap, f"{prefix}kestrel.events.v1", 0, timeout_s=1) == []


async def test_batch_reports_each_item_and_publishes_only_valid_in_order(ingest, kafka):
    stub, _, prefix = ingest
    events = [make_event(0), make_event(1, country="Germany"), make_event(2), make_event(3, event_id="")]
    reply = await stub.PublishBatch(ingest_pb2.PublishBatchRequest(events=events))
    assert (reply.accepted, reply.rejected) == (2, 2)
    assert [r.accepted for r in reply.results] == [True, False, True, False]
    assert [v.field for v in reply.results[1].violations] == ["event.country"]
    assert [v.field for v in reply.results[3].violations] == ["event.event_id"]
    records = await read_topic(kafka.bootstrap, f"{prefix}kestrel.events.v1", 2)
    serde = serde_for_topic(FileSchemaRegistry(), records[0].topic, "event")
    assert sorted(serde.deserialize(r.value)["event_id"] for r in records) == sorted(
        [events[0].event_id, events[2].event_id]
    )


async def test_stream_publishes_in_chunks_with_global_indexes(ingest, kafka):
    stub, _, prefix = ingest
    events = [make_event(i) for i in range(1_203)]
    events[1_100].currency = "X"

    async def requests():
        for e in events:
            yield ingest_pb2.PublishRequest(event=e)

    reply = await stub.PublishStream(requests())
    assert (reply.accepted, reply.rejected) == (1_202, 1)
    assert [r.index for r in reply.results] == list(range(1_203))
    assert not reply.results[1_100].accepted
    assert len(await read_topic(kafka.bootstrap, f"{prefix}kestrel.events.v1", 1_202)) == 1_202


async def test_broker_outage_gives_unavailable_then_recovers(tmp_path):
    broker = KafkaBroker(tmp_path / "kafka")
    broker.die_with_parent = True
    await broker.start()
    app, _ = await start_ingest(broker.bootstrap, delivery_timeout_s=3.0)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.part(GrpcServer).port}") as channel:
            stub = ingest_pb2_grpc.IngestServiceStub(channel)
            await stub.Publish(ingest_pb2.PublishRequest(event=make_event()))
            await broker.stop()
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.Publish(ingest_pb2.PublishRequest(event=make_event()))
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "kafka" in err.value.details() or "acknowledge" in err.value.details()
            await broker.start()
            deadline = time.monotonic() + 60
            while True:  # the producer reconnects by itself; no restart of ingest
                try:
                    reply = await stub.Publish(ingest_pb2.PublishRequest(event=make_event()))
                    break
                except grpc.aio.AioRpcError as exc:
                    assert exc.code() == grpc.StatusCode.UNAVAILABLE and time.monotonic() < deadline
            assert reply.offset >= 1
    finally:
        await app.stop()
        await broker.stop()


async def test_a_fatal_producer_error_takes_ingest_out_of_rotation_and_stops_it(kafka):
    stop = asyncio.Event()
    app, _ = await start_ingest(kafka.bootstrap, stop)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.part(GrpcServer).port}") as channel:
            stub = ingest_pb2_grpc.IngestServiceStub(channel)
            await stub.Publish(ingest_pb2.PublishRequest(event=make_event()))
            # What librdkafka's error callback receives, from its poll thread, when idempotence is fenced.
            await asyncio.to_thread(
                app.part(CheckedProducer)._on_error, KafkaError(KafkaError._FENCED, "fenced", fatal=True)
            )
            await asyncio.wait_for(stop.wait(), 5)  # the process is asked to exit, so it is restarted
            assert app.failed
            health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""))
            assert health.status == health_pb2.HealthCheckResponse.NOT_SERVING
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.Publish(ingest_pb2.PublishRequest(event=make_event()))
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE and "fatal" in err.value.details()
    finally:
        await app.stop()


async def test_past_its_limit_ingest_refuses_at_once_with_retry_advice_and_loses_nothing_admitted(kafka):
    app, prefix = await start_ingest(kafka.bootstrap, max_events_in_flight=600, overload_retry_ms=250)
    calls = [[make_event(100 * c + i) for i in range(500)] for c in range(12)]
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.part(GrpcServer).port}") as channel:
            stub = ingest_pb2_grpc.IngestServiceStub(channel)
            replies = await asyncio.gather(
                *(stub.PublishBatch(ingest_pb2.PublishBatchRequest(events=e)) for e in calls), return_exceptions=True
            )
    finally:
        await app.stop()
    refused = [r for r in replies if isinstance(r, grpc.aio.AioRpcError)]
    answered = [(e, r) for e, r in zip(calls, replies) if not isinstance(r, BaseException)]
    assert refused and answered  # one batch of 500 fits under 600 at a time: the rest are turned away
    for error in refused:
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error
        assert "ingest at capacity" in error.details() and error.details().endswith("retry in 250 ms")
        assert ("grpc-retry-pushback-ms", "250") in tuple(error.trailing_metadata())
    assert all(r.accepted == 500 for _, r in answered)
    published = await read_topic(kafka.bootstrap, f"{prefix}kestrel.events.v1", 500 * len(answered))
    serde = serde_for_topic(FileSchemaRegistry(), published[0].topic, "event")
    expected = sorted(e.event_id for events, _ in answered for e in events)
    assert sorted(serde.deserialize(r.value)["event_id"] for r in published) == expected  # nothing refused got in
