"""The events subject on real Kafka and PostgreSQL: raw events in, one report per window on the topic (keyed events)
and in PostgreSQL, a shifted channel named."""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import replace
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import numpy as np
import pytest

from kestrel.common.kafka import OutRecord, Producer
from kestrel.common.registry import FileSchemaRegistry
from kestrel.common.serde import serde_for_topic
from kestrel.common.topics import dead_letter_topic
from kestrel.devstack.topics import PrefixedTopics
from kestrel.drift_monitor.service import SERVICE
from kestrel.drift_monitor.settings import DriftMonitorSettings
from kestrel.model.artifact import ModelArtifact, save
from kestrel.model.events import event_reference
from kestrel.model.network import Network
from kestrel.model.reference import compute_reference

pytestmark = pytest.mark.integration

EVENTS, REPORTS = "kestrel.events.v1", "kestrel.drift-reports.v1"
CATALOGUE = (EVENTS, "kestrel.predictions.v1", REPORTS, dead_letter_topic("drift-monitor"))
WINDOW_MS = 60_000
NET = Network(np.zeros(1), np.ones(1), np.zeros(1, bool), ((np.ones((1, 1)), np.zeros(1)),))


class Payments:
    """Card payments over 200 cards (so every partition gets some); `online` of them e-commerce."""

    def __init__(self, rng: random.Random) -> None:
        self.rng, self.sent = rng, 0

    def window(self, start: int, n: int, online: float = 0.2, at: int | None = None) -> list[dict[str, Any]]:
        return [self._one(start + (self.rng.randrange(WINDOW_MS) if at is None else at), online) for _ in range(n)]

    def _one(self, event_time: int, online: float) -> dict[str, Any]:
        self.sent += 1
        return {
            "event_id": f"e{self.sent}",
            "entity_id": f"card-{self.sent % 200}",
            "event_time": event_time,
            "amount": round(self.rng.lognormvariate(3, 1), 2),
            "currency": "EUR",
            "merchant_id": "m1",
            "merchant_category": self.rng.choice(["5411", "5812", "5999"]),
            "country": self.rng.choice(["DE", "FR"]),
            "channel": "ecommerce" if self.rng.random() < online else "pos",
            "attributes": {},
        }


def repository(root: Path, model: str) -> Path:
    """Version 1 of `model`, trained (as far as its events reference says) on 5,000 payments, 20% online."""
    X = np.random.default_rng(0).normal(size=(100, 1))
    reference = compute_reference(X, NET.predict(X), ("amount",))
    reference = replace(reference, events=event_reference(Payments(random.Random(1)).window(0, 5000)))
    save(ModelArtifact(model, 1, "t.v1", ("amount",), NET, {}, {}, reference, "2026-12-01T00:00:00Z"), root)
    return root


async def event_reports(dsn: str, model: str, expected: int, timeout_s: float = 90) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(dsn)
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                rows = await conn.fetch(
                    "SELECT payload::text AS payload FROM drift_reports WHERE model_name = $1 AND subject = 'events' "
                    "ORDER BY window_start",
                    model,
                )
                if len(rows) >= expected:
                    return [json.loads(r["payload"]) for r in rows]
                await asyncio.sleep(0.3)
    finally:
        await conn.close()


async def test_event_windows_are_reported_in_postgres_and_on_the_topic_naming_a_shifted_channel(
    kafka: Any, postgres: Any, tmp_path: Path
) -> None:
    stream = PrefixedTopics(kafka.bootstrap)
    await stream.apply(*CATALOGUE)
    model = f"m{uuid4().hex[:8]}"
    settings = DriftMonitorSettings(
        kafka_bootstrap=kafka.bootstrap,
        topic_prefix=stream.prefix,
        postgres_dsn=postgres.dsn,
        metrics_port=0,
        health_port=0,
        session_timeout_ms=3000,
        group_id=f"drift-{model}",
        events_group_id=f"events-{model}",
        events_model=model,
        window_s=WINDOW_MS // 1000,
        allowed_lateness_s=5,
        idle_partition_s=120,
        model_repository=repository(tmp_path, model),
        changelog_replication=1,
        commit_interval_s=0.2,
    )
    payments = Payments(random.Random(7))
    w0 = (int(time.time() * 1000) - 86_400_000) // WINDOW_MS * WINDOW_MS
    w1, w2 = w0 + WINDOW_MS, w0 + 2 * WINDOW_MS
    serde = serde_for_topic(FileSchemaRegistry(), stream.name(EVENTS), "event")
    producer = Producer({"bootstrap.servers": kafka.bootstrap})
    await producer.start()
    app = SERVICE.app(settings)
    await app.start()
    try:
        sent = payments.window(w0, 800) + payments.window(w1, 800, online=0.5) + payments.window(w2, 300, at=10_000)
        encoded = serde.serialize_many(sent)
        await producer.send_many(
            [OutRecord(stream.name(EVENTS), v, e["entity_id"].encode()) for v, e in zip(encoded, sent)]
        )
        first, second = await event_reports(postgres.dsn, model, 2)
        published = await stream.read(stream.name(REPORTS), 2)
    finally:
        await app.stop()
        await producer.stop()
    assert (first["status"], first["window_size"], first["model_version"]) == ("ok", 800, "1")
    assert (second["status"], second["drifted_features"], second["reference_size"]) == ("drift", ["channel"], 5000)
    assert {r.key for r in published} == {b"events"}
