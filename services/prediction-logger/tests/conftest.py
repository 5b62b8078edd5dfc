"""Fixtures for prediction-logger tests: isolated topics, a stream of predictions and labels, the stored rows."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest

from kestrel.common.kafka import OutRecord, Producer
from kestrel.common.registry import FileSchemaRegistry
from kestrel.common.serde import serde_for_topic
from kestrel.common.topics import dead_letter_topic
from kestrel.devstack.topics import PrefixedTopics
from kestrel.prediction_logger.settings import PredictionLoggerSettings

CATALOGUE = ("kestrel.predictions.v1", "kestrel.labels.v1", dead_letter_topic("prediction-logger"))


FEATURE_NAMES = {"t.v1": ["amount", "count_1h"]}
"""The feature set of the test predictions: its version and its names in vector order."""


class Stream(PrefixedTopics):
    """The logger's topics under a prefix of this test's own; ids carry the prefix too, so tests sharing one
    PostgreSQL count only their own rows."""

    feature_names = FEATURE_NAMES

    @property
    def run(self) -> str:
        return self.prefix.rstrip(".")

    def predictions(self, n: int, seed: int = 1, start: int = 0) -> list[dict[str, Any]]:
        rng = random.Random(seed)
        now = int(time.time() * 1000)
        return [
            {
                "prediction_id": f"{self.run}-p{i}",
                "event_id": f"{self.run}-e{i}",
                "entity_id": f"card-{rng.randrange(50)}",
                "event_time": now - rng.randrange(3 * 86_400_000),  # today and the days before: several partitions
                "model_name": "fraud",
                "model_version": rng.choice(["1", "2"]),
                "score": rng.random(),
                "threshold": 0.5,
                "decision": rng.random() > 0.5,
                "feature_set_version": "t.v1",
                "features": {},
                "feature_values": [rng.uniform(0, 500), float(rng.randrange(9))],
                "features_age_ms": rng.randrange(1000),
                "degraded": False,
                "flags": [],
                "latency_us": rng.randrange(5000),
                "source": "stream",
                "predicted_at": now,
            }
            for i in range(start, start + n)
        ]

    def labels(self, predictions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {
                "event_id": p["event_id"],
                "entity_id": p["entity_id"],
                "label": int(p["score"] > 0.9),
                "label_time": p["predicted_at"] + 60_000,
                "source": "chargeback",
            }
            for p in predictions
        ]

    def settings(self, dsn: str, **overrides: Any) -> PredictionLoggerSettings:
        base = dict(
            kafka_bootstrap=self.bootstrap,
            topic_prefix=self.prefix,
            postgres_dsn=dsn,
            group_id=f"g-{self.prefix}",
            metrics_port=0,
            health_port=0,
            session_timeout_ms=3000,
            max_batch=500,
            retry_initial_s=0.05,
            retry_max_s=0.5,
        )
        return PredictionLoggerSettings(**{**base, **overrides})

    async def count(self, dsn: str, table: str) -> int:
        conn = await asyncpg.connect(dsn)
        try:
            return await conn.fetchval(f"SELECT count(*) FROM {table} WHERE event_id LIKE $1", f"{self.run}-%")
        finally:
            await conn.close()

    async def wait_for_rows(self, dsn: str, predictions: int, labels: int, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while (got := (await self._try_count(dsn, "predictions"), await self._try_count(dsn, "labels"))) != (
            predictions,
            labels,
        ):
            if time.monotonic() > deadline:
                raise AssertionError(f"rows (predictions, labels): {got}, expected {(predictions, labels)}")
            await asyncio.sleep(0.2)

    async def _try_count(self, dsn: str, table: str) -> int:
        try:
            return await self.count(dsn, table)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return -1  # PostgreSQL down or restarting


@pytest.fixture
async def stream(kafka: Any) -> Stream:
    s = Stream(kafka.bootstrap)
    await s.apply(*CATALOGUE)
    return s


@pytest.fixture
async def send(kafka: Any, stream: Stream) -> AsyncIterator[Callable[..., Any]]:
    """`await send(predictions=[...], labels=[...], raw=[b"..."])`: Avro records keyed by entity; raw bytes go
    to the predictions topic."""
    producer = Producer({"bootstrap.servers": kafka.bootstrap})
    await producer.start()
    registry = FileSchemaRegistry()
    topics = {
        "predictions": stream.name("kestrel.predictions.v1"),
        "labels": stream.name("kestrel.labels.v1"),
    }
    serdes = {
        "predictions": serde_for_topic(registry, topics["predictions"], "prediction"),
        "labels": serde_for_topic(registry, topics["labels"], "label"),
    }

    async def send(predictions: Any = (), labels: Any = (), raw: Any = ()) -> None:
        out = [OutRecord(topics["predictions"], b, b"bad") for b in raw]
        for kind, values in (("predictions", predictions), ("labels", labels)):
            encoded = serdes[kind].serialize_many(list(values))
            out += [OutRecord(topics[kind], v, r["entity_id"].encode()) for v, r in zip(encoded, values)]
        await producer.send_many(out)

    yield send
    await producer.stop()
