"""KafkaSink against a real broker: Confluent-framed Avro keyed by card, read back with aiokafka."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest
from aiokafka import AIOKafkaConsumer

from kestrel.common.kafka import aiokafka_config
from kestrel.common.serde import make_registry, serde_for_topic
from kestrel.simulator.generator import GeneratorConfig
from kestrel.simulator.runner import RunConfig, run
from kestrel.simulator.settings import SimulatorSettings

pytestmark = pytest.mark.integration

# The common Producer compresses with lz4; aiokafka decodes it only with cramjam installed.
pytest.importorskip("cramjam", reason="aiokafka needs cramjam to read lz4-compressed batches")


async def read_all(settings: SimulatorSettings, topic: str, expected: int, group_id: str) -> list:
    consumer = AIOKafkaConsumer(
        topic, group_id=group_id, auto_offset_reset="earliest", enable_auto_commit=False, **aiokafka_config(settings)
    )
    await consumer.start()
    records: list = []
    try:
        async with asyncio.timeout(60):
            while len(records) < expected:
                batches = await consumer.getmany(timeout_ms=1000)
                records += [r for batch in batches.values() for r in batch]
    finally:
        await consumer.stop()
    return records


async def test_thousand_events_straight_to_kafka_and_back(kafka, topic_factory, group_id):
    events_topic, labels_topic = await topic_factory(partitions=3), await topic_factory(partitions=1)
    settings = SimulatorSettings(
        _env_file=None, kafka_bootstrap=kafka.bootstrap, events_topic=events_topic, labels_topic=labels_topic
    )
    generator = GeneratorConfig(cards=200, seed=2, run_id="kafka", fraud_rate=0.05, merchants_per_country=50)
    summary = await run(
        RunConfig(generator=generator, to="kafka", rate=0, count=1_000, clock="sim", progress="off", settings=settings)
    )
    assert summary.sent == 1_000 and summary.failed == 0
    assert summary.labels_sent == 1_000 and summary.labels_failed == 0

    registry = make_registry(settings)
    event_serde = serde_for_topic(registry, events_topic, "event")
    records = await read_all(settings, events_topic, 1_000, group_id)
    events = [event_serde.deserialize(r.value) for r in records]
    assert sorted(e["event_id"] for e in events) == sorted(f"kafka-{i}" for i in range(1_000))
    assert all(r.key.decode() == e["entity_id"] for r, e in zip(records, events))
    partitions = defaultdict(set)
    for r, e in zip(records, events):
        partitions[e["entity_id"]].add(r.partition)
    assert all(len(p) == 1 for p in partitions.values()), "a card's events must stay in one partition"

    label_serde = serde_for_topic(registry, labels_topic, "label")
    labels = [label_serde.deserialize(r.value) for r in await read_all(settings, labels_topic, 1_000, group_id + "l")]
    assert {label["event_id"] for label in labels} == {e["event_id"] for e in events}
    assert sum(label["label"] for label in labels) == summary.fraud


async def test_missing_topics_fail_fast(kafka):
    from kestrel.common.errors import NotFoundError

    settings = SimulatorSettings(_env_file=None, kafka_bootstrap=kafka.bootstrap, topic_prefix="nope-")
    with pytest.raises(NotFoundError, match="nope-kestrel.events.v1"):
        await run(
            RunConfig(generator=GeneratorConfig(cards=10, run_id="x"), count=10, progress="off", settings=settings)
        )
