"""Fixtures for feature-writer tests: isolated topics and key prefix, a vector stream and the Redis state."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Any

import pytest

from kestrel.common.kafka import OutRecord, Producer
from kestrel.common.registry import FileSchemaRegistry
from kestrel.common.serde import serde_for_topic
from kestrel.common.topics import dead_letter_topic
from kestrel.devstack.topics import PrefixedTopics
from kestrel.online_store import VectorWrite, newest_per_key

NAMES = ["zeta", "alpha", "mid"]


def _make_vectors(n: int, entities: int, seed: int = 1, version: str = "t.v1") -> list[dict[str, Any]]:
    """Vectors whose event times jump back and forth (late events), with equal times and replayed ids."""
    rng = random.Random(seed)
    base = int(time.time() * 1000) - 3_600_000
    out = []
    for i in range(n):
        t = base + i * 10 + rng.choice([0, 0, 0, -5000, -200_000, 7])
        event_id = f"e-{rng.randrange(n)}" if rng.random() < 0.1 else f"e-{i}"
        out.append(
            {
                "entity_id": f"card-{rng.randrange(entities)}",
                "event_id": event_id,
                "event_time": t,
                "feature_set_version": version,
                "computed_at": base + i * 10,
                "features": {name: rng.uniform(-100, 100) for name in NAMES},
            }
        )
    return out


class Topics(PrefixedTopics):
    """The writer's catalogue topics under a prefix of this test's own, plus the key prefix in Redis."""

    @property
    def features(self) -> str:
        return self.name("kestrel.features.v1")

    @property
    def dead_letters(self) -> str:
        return self.name(dead_letter_topic("feature-writer"))

    def expected(self, vectors: list[dict[str, Any]]) -> dict[str, dict[bytes, bytes]]:
        """What Redis must hold at the end: the newest vector per entity, fields other than written-at."""
        newest = newest_per_key(VectorWrite.from_record(v, self.key_prefix) for v in vectors)
        return {
            w.key: {
                b"_ts": str(w.event_time_ms).encode(),
                b"_e": w.event_id.encode(),
                b"_v": w.version.encode(),
                b"x": w.values,
            }
            for w in newest
        }

    async def redis_state(self, client: Any) -> dict[str, dict[bytes, bytes]]:
        """Every hash under the prefix, without the written-at field (it differs from run to run)."""
        keys = [k async for k in client.scan_iter(match=f"{self.key_prefix}:*", count=1000)]
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        hashes = await pipe.execute() if keys else []
        return {k.decode(): {f: v for f, v in h.items() if f != b"_w"} for k, h in zip(keys, hashes)}

    async def wait_for_state(self, client: Any, expected: dict[str, Any], timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while (state := await self.redis_state(client)) != expected:
            if time.monotonic() > deadline:
                missing = len(set(expected) - set(state))
                wrong = sum(1 for k in expected if k in state and state[k] != expected[k])
                raise AssertionError(
                    f"redis state differs: {missing} keys missing, {wrong} differ, "
                    f"{len(set(state) - set(expected))} unexpected"
                )
            await asyncio.sleep(0.2)


@pytest.fixture
def make_vectors() -> Callable[..., list[dict[str, Any]]]:
    """`make_vectors(n, entities, seed=1, version="t.v1")`: decoded FeatureVector records."""
    return _make_vectors


@pytest.fixture
async def topics(kafka) -> Topics:
    t = Topics(kafka.bootstrap)
    await t.apply("kestrel.features.v1", dead_letter_topic("feature-writer"))
    return t


@pytest.fixture
async def send(kafka, topics) -> Callable[..., Any]:
    """`await send(vectors, raw=[b"..."])`: produce Avro vectors (keyed by entity) and raw payloads."""
    producer = Producer({"bootstrap.servers": kafka.bootstrap})
    await producer.start()
    serde = serde_for_topic(FileSchemaRegistry(), topics.features, "feature_vector")

    async def send(vectors: list[dict[str, Any]], raw: list[bytes] = ()) -> None:
        values = serde.serialize_many(vectors)
        records = [OutRecord(topics.features, v, r["entity_id"].encode()) for v, r in zip(values, vectors)]
        await producer.send_many([*records, *(OutRecord(topics.features, b, b"bad") for b in raw)])

    yield send
    await producer.stop()
