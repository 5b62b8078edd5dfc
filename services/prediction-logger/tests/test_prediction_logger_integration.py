"""The prediction-logger against real Kafka and PostgreSQL: exactly once, labels join either way round, dead
letters, a PostgreSQL outage."""

from __future__ import annotations

import asyncio
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest
from prometheus_client import REGISTRY

from kestrel.common.topics import dead_letter_topic
from kestrel.devstack import migrations
from kestrel.devstack.postgres import PostgresServer
from kestrel.prediction_logger.service import SERVICE

pytestmark = pytest.mark.integration


def duplicates() -> dict[str, float]:
    return {
        table: REGISTRY.get_sample_value(
            "kestrel_prediction_logger_rows_total", {"table": table, "outcome": "duplicate"}
        )
        or 0.0
        for table in ("predictions", "labels")
    }


async def test_records_delivered_twice_are_stored_once_and_labels_join_either_way(postgres, stream, send):
    before = duplicates()
    predictions = stream.predictions(1200)
    labels = stream.labels(predictions)
    app = SERVICE.app(stream.settings(postgres.dsn))
    await app.start()
    try:
        await send(labels=labels[:600])  # labels before their predictions
        await send(predictions=predictions, labels=labels[600:])
        await send(predictions=predictions[:500], labels=labels[:300])  # redelivered (a producer retried)
        await stream.wait_for_rows(postgres.dsn, 1200, 1200)
        assert await stream.count(postgres.dsn, "labelled_predictions") == 1200
        assert app.runtime.ready()
        async with asyncio.timeout(20):  # the redelivered records come after the rows are complete
            while {t: n - before[t] for t, n in duplicates().items()} != {"predictions": 500, "labels": 300}:
                await asyncio.sleep(0.1)
    finally:
        await app.stop()


async def test_a_bad_record_is_dead_lettered_and_the_rest_of_its_batch_lands(postgres, stream, send):
    predictions = stream.predictions(300, seed=2)
    bad_label = dict(stream.labels(predictions[:1])[0], label=7)
    app = SERVICE.app(stream.settings(postgres.dsn))
    await app.start()
    try:
        await send(predictions=predictions, labels=[bad_label], raw=[b"not avro"])
        await stream.wait_for_rows(postgres.dsn, 300, 0)
        dead = await stream.read(stream.name(dead_letter_topic("prediction-logger")), 2)
        assert len(dead) == 2
    finally:
        await app.stop()


async def test_a_postgres_restart_pauses_writing_and_loses_and_duplicates_nothing(
    kestrel_state_dir: Path, stream, send
):
    home = kestrel_state_dir / f"pg-{uuid4().hex[:8]}"
    home.mkdir(mode=0o755)
    server = PostgresServer(home)
    await server.start()
    await migrations.apply(server.dsn)
    predictions = stream.predictions(3000, seed=3)
    labels = stream.labels(predictions)
    app = SERVICE.app(stream.settings(server.dsn, postgres_timeout_s=2))
    await app.start()
    try:
        await send(predictions=predictions[:1000], labels=labels[:1000])
        await stream.wait_for_rows(server.dsn, 1000, 1000)
        await server.stop()
        await send(predictions=predictions[1000:], labels=labels[1000:])
        async with asyncio.timeout(20):
            while app.runtime.ready():
                await asyncio.sleep(0.05)
        await asyncio.sleep(1)  # a few retries while down
        await server.start()
        await stream.wait_for_rows(server.dsn, 3000, 3000)
        assert app.runtime.ready()
    finally:
        await app.stop()
        await server.stop()


async def test_partitions_are_created_ahead(postgres, stream) -> None:
    app = SERVICE.app(stream.settings(postgres.dsn, partitions_ahead=2))
    await app.start()
    await app.stop()
    conn = await asyncpg.connect(postgres.dsn)
    try:
        names = await conn.fetch(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'labels'::regclass AND c.relname LIKE $1",
            "labels_2%",
        )
        assert len(names) >= 3  # today and two days ahead
    finally:
        await conn.close()
