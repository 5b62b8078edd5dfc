"""Prediction-logger rows: PostgreSQL writes (ours vs raw COPY and executemany of the same rows), the whole
Kafka-to-PostgreSQL path, and the end-to-end lag at a steady prediction rate."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
from prometheus_client import REGISTRY

from bench.fixtures import drain_rate, fresh_catalogue
from bench.report import Row, latency_ms
from kestrel.common.kafka import OutRecord, Producer
from kestrel.common.registry import FileSchemaRegistry
from kestrel.common.runtime.app import Watched
from kestrel.common.serde import serde_for_topic
from kestrel.devstack import migrations
from kestrel.devstack.postgres import PostgresServer
from kestrel.featureset import load_feature_set
from kestrel.prediction_logger.rows import PREDICTION_COLUMNS, Rows, prediction_row
from kestrel.prediction_logger.service import SERVICE
from kestrel.prediction_logger.settings import PredictionLoggerSettings
from kestrel.prediction_logger.store import PostgresStore

GROUP = "prediction-logger"
RAW_COPY = "raw asyncpg copy_records_to_table"
BATCH = 2000


def sample_predictions(n: int, names: list[str], seed: int = 13, run: str = "b") -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(n, len(names))).tolist()
    scores = rng.random(n).tolist()
    now = int(time.time() * 1000)
    return [
        {
            "prediction_id": f"{run}-p{i}",
            "event_id": f"{run}-e{i}",
            "entity_id": f"card-{i % 50_000}",
            "event_time": now - (n - i),
            "model_name": "kestrel_fraud",
            "model_version": "1",
            "score": scores[i],
            "threshold": 0.5,
            "decision": scores[i] >= 0.5,
            "feature_set_version": "card.v1",
            "features": {},
            "feature_values": values[i],
            "features_age_ms": 12,
            "degraded": False,
            "flags": [],
            "latency_us": 800,
            "source": "stream",
            "predicted_at": now,
        }
        for i in range(n)
    ]


async def raw_copy(conn: Any, rows: list[tuple[Any, ...]]) -> None:
    """The floor: COPY straight into the table, no staging, no conflict handling."""
    for i in range(0, len(rows), BATCH):
        async with conn.transaction():
            await conn.copy_records_to_table("predictions", records=rows[i : i + BATCH], columns=PREDICTION_COLUMNS)


async def executemany(conn: Any, rows: list[tuple[Any, ...]]) -> None:
    names = ", ".join(PREDICTION_COLUMNS)
    marks = ", ".join(f"${i + 1}" for i in range(len(PREDICTION_COLUMNS)))
    sql = f"INSERT INTO predictions ({names}) VALUES ({marks}) ON CONFLICT DO NOTHING"
    for i in range(0, len(rows), BATCH):
        async with conn.transaction():
            await conn.executemany(sql, rows[i : i + BATCH])


async def ours(store: PostgresStore, rows: list[tuple[Any, ...]]) -> None:
    for i in range(0, len(rows), BATCH):
        await store.write(Rows(predictions=rows[i : i + BATCH]))


async def write_rows(dsn: str, rows: list[tuple[Any, ...]], width: int, rounds: int) -> list[Row]:
    """Raw COPY, ours and executemany alternate on an emptied table each round; the best round counts."""
    conn = await asyncpg.connect(dsn)
    store = PostgresStore(dsn, 60)
    await store.start()
    quarter = rows[: len(rows) // 4]
    cases = {
        "raw": (lambda: raw_copy(conn, rows), len(rows)),
        "ours": (lambda: ours(store, rows), len(rows)),
        "executemany": (lambda: executemany(conn, quarter), len(quarter)),
    }
    best = dict.fromkeys(cases, 0.0)
    try:
        for _ in range(rounds):
            for name, (call, count) in cases.items():
                await conn.execute("TRUNCATE predictions")
                start = time.perf_counter()
                await call()
                best[name] = max(best[name], count / (time.perf_counter() - start))
        await conn.execute("TRUNCATE predictions")
    finally:
        await store.stop()
        await conn.close()
    shape = f"{len(rows):,} predictions of {width} features, {BATCH}/transaction; best of {rounds}"
    return [
        Row(GROUP, RAW_COPY, best["raw"], notes=f"{shape}; into the table, no conflict handling"),
        Row(
            GROUP,
            "PostgresStore.write (COPY to staging + INSERT ON CONFLICT)",
            best["ours"],
            baseline=RAW_COPY,
            notes="the logger's write: idempotent",
        ),
        Row(
            GROUP,
            "asyncpg executemany INSERT ON CONFLICT",
            best["executemany"],
            baseline=RAW_COPY,
            notes=f"{len(quarter):,} of the rows, for reference",
        ),
    ]


async def produce(bootstrap: str, topic: str, predictions: list[dict[str, Any]], rate: float | None = None) -> None:
    serde = serde_for_topic(FileSchemaRegistry(), topic, "prediction")
    producer = Producer({"bootstrap.servers": bootstrap})
    await producer.start()
    step = 500 if rate else 5000
    start = time.perf_counter()
    for i in range(0, len(predictions), step):
        if rate:
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            now = int(time.time() * 1000)
            chunk = [dict(p, predicted_at=now) for p in predictions[i : i + step]]
        else:
            chunk = predictions[i : i + step]
        await producer.send_many(
            OutRecord(topic, v, r["entity_id"].encode()) for v, r in zip(serde.serialize_many(chunk), chunk)
        )
    await producer.stop()


def settings(bootstrap: str, prefix: str, dsn: str) -> PredictionLoggerSettings:
    return PredictionLoggerSettings(
        kafka_bootstrap=bootstrap,
        topic_prefix=prefix,
        postgres_dsn=dsn,
        group_id=f"{prefix}logger",
        metrics_port=0,
        health_port=0,
        log_level="WARNING",
    )


async def kafka_to_postgres(bootstrap: str, dsn: str, predictions: list[dict[str, Any]]) -> float:
    """The whole service path: consume, decode Avro, COPY + INSERT, commit; pre-filled topic."""
    prefix = await fresh_catalogue(bootstrap)
    await produce(bootstrap, prefix + "kestrel.predictions.v1", predictions)
    return await drain_rate(SERVICE.app(settings(bootstrap, prefix, dsn)), len(predictions))


async def lag_at_rate(bootstrap: str, dsn: str, predictions: list[dict[str, Any]], rate: float) -> list[float]:
    """Samples of the logger's lag gauge (now minus the newest stored predicted_at) while predictions arrive
    at `rate` per second."""
    prefix = await fresh_catalogue(bootstrap)
    app = SERVICE.app(settings(bootstrap, prefix, dsn))
    await app.start()
    consumer = app.part(Watched).loop
    samples: list[float] = []
    try:
        sending = asyncio.create_task(produce(bootstrap, prefix + "kestrel.predictions.v1", predictions, rate))
        while not sending.done() or consumer.processed < len(predictions):
            await asyncio.sleep(0.05)
            if consumer.processed:
                samples.append(REGISTRY.get_sample_value("kestrel_prediction_logger_lag_seconds") or 0.0)
        await sending
        return samples
    finally:
        await app.stop()


async def run(bootstrap: str, workdir: Path, quick: bool) -> list[Row]:
    n = 40_000 if quick else 200_000
    names = load_feature_set("card").names
    workdir.chmod(0o755)  # PostgreSQL may run as its own user, which must reach its data directory
    home = workdir / "prediction-logger"
    home.mkdir(mode=0o755)
    server = PostgresServer(home)
    await server.start()
    try:
        await migrations.apply(server.dsn)
        predictions = sample_predictions(n, names)
        rows = await write_rows(server.dsn, [prediction_row(p) for p in predictions], len(names), 2 if quick else 3)
        rows.append(
            Row(
                GROUP,
                "prediction-logger Kafka to PostgreSQL",
                await kafka_to_postgres(bootstrap, server.dsn, sample_predictions(n, names, run="k")),
                baseline=RAW_COPY,
                notes="consume + Avro decode + COPY + INSERT + commit, one process",
            )
        )
        rate = 5000.0
        lag = await lag_at_rate(
            bootstrap, server.dsn, sample_predictions(int(rate * (4 if quick else 20)), names, run="l"), rate
        )
        rows.append(
            Row(
                GROUP,
                "prediction-logger end-to-end lag at 5,000 predictions/s",
                None,
                *latency_ms(lag),
                notes="lag gauge sampled every 50 ms: now minus newest stored predicted_at",
            )
        )
        return rows
    finally:
        await server.stop()
