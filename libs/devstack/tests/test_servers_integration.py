"""Redis and PostgreSQL answer; the prediction log is partitioned and idempotent by prediction id."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from uuid import uuid4

import asyncpg
import pytest
import redis.asyncio as aioredis

pytestmark = pytest.mark.integration


async def test_redis_answers(redis_server: Any) -> None:
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        key = f"t-{uuid4().hex}"
        assert await client.ping()
        await client.set(key, b"v", ex=60)
        assert await client.get(key) == b"v"
    finally:
        await client.aclose()


async def test_postgres_has_the_schema(postgres: Any) -> None:
    conn = await asyncpg.connect(postgres.dsn)
    try:
        tables = {r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")}
        assert {"predictions", "labels", "drift_reports", "model_registry", "schema_migrations"} <= tables
    finally:
        await conn.close()


async def test_predictions_go_to_daily_partitions_and_duplicates_are_ignored(postgres: Any) -> None:
    conn = await asyncpg.connect(postgres.dsn)
    try:
        day = date(2031, 1, 2)
        assert await conn.fetchval("SELECT create_predictions_partition($1)", day) == "predictions_20310102"
        assert await conn.fetchval("SELECT create_predictions_partition($1)", day) == "predictions_20310102"
        row = _prediction(datetime(2031, 1, 2, 23, 59, tzinfo=UTC))
        placeholders = ", ".join(f"${i + 1}" for i in range(len(row)))
        insert = f"INSERT INTO predictions ({', '.join(row)}) VALUES ({placeholders}) "
        for _ in range(2):
            await conn.execute(insert + "ON CONFLICT DO NOTHING", *row.values())
        found = await conn.fetch(
            "SELECT tableoid::regclass::text AS part FROM predictions WHERE prediction_id = $1", row["prediction_id"]
        )
        assert [r["part"] for r in found] == ["predictions_20310102"]
    finally:
        await conn.close()


def _prediction(event_time: datetime) -> dict[str, Any]:
    return {
        "prediction_id": str(uuid4()), "event_id": "e1", "entity_id": "card-1", "event_time": event_time,
        "model_name": "fraud", "model_version": "1", "score": 0.9, "threshold": 0.5, "decision": True,
        "features": '{"amount": 1.0}', "feature_set_version": "v1", "features_age_ms": 3, "degraded": False,
        "latency_us": 800, "source": "stream", "predicted_at": event_time,
    }  # fmt: skip
