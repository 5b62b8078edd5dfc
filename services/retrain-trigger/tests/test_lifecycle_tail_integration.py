"""Reading the lifecycle topic back before a step is published: this model's steps, past garbage and others."""

import json

import pytest

from kestrel.common.errors import SerializationError
from kestrel.common.kafka import OutRecord, Producer
from kestrel.devstack.topics import PrefixedTopics
from kestrel.retrain_trigger.lifecycle_tail import LifecycleTail

pytestmark = pytest.mark.integration


def decode(value: bytes) -> dict:
    try:
        return json.loads(value)
    except ValueError as exc:
        raise SerializationError(str(exc)) from exc


def step(model: str, stage: str, reason: str) -> bytes:
    return json.dumps({"model_name": model, "stage": stage, "reason": reason}).encode()


async def test_the_tail_holds_this_models_steps_and_reads_past_garbage(kafka):
    topics = PrefixedTopics(kafka.bootstrap)
    await topics.apply("kestrel.model-lifecycle.v1")
    name = topics.name("kestrel.model-lifecycle.v1")
    tail = LifecycleTail({"bootstrap_servers": kafka.bootstrap}, name, decode)
    assert await tail("m") == set()
    producer = Producer({"bootstrap.servers": kafka.bootstrap})
    await producer.start()
    try:
        records = [b"\x00not a record", step("m", "loaded", "[r1] up"), step("other", "loaded", "[r2] up")]
        await producer.send_many(OutRecord(name, v, b"m") for v in records)
    finally:
        await producer.stop()
    assert await tail("m") == {("loaded", "[r1] up")}
