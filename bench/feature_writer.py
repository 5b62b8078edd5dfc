"""Feature-writer rows: Redis writes (ours vs raw pipelined HSET, Kafka to Redis) and online-store fetch latency."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.fixtures import drain_rate, fresh_catalogue
from bench.report import Row, latency_ms
from kestrel.common.kafka import OutRecord, Producer
from kestrel.common.registry import FileSchemaRegistry
from kestrel.common.serde import serde_for_topic
from kestrel.devstack.redis_server import RedisServer
from kestrel.feature_writer.service import SERVICE
from kestrel.feature_writer.settings import FeatureWriterSettings
from kestrel.featureset import load_feature_set
from kestrel.online_store import OnlineStore, OnlineStoreWriter, VectorWrite, redis_client

GROUP = "feature-writer"
RAW_WRITE = "raw pipelined HSET (packed vector)"
RAW_GET = "raw HGETALL, 1 entity"
RAW_GET_100 = "raw pipelined HGETALL, 100 entities"
BATCH = 2000


def sample_vectors(n: int, names: list[str], version: str, entities: int, seed: int = 11) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(n, len(names))).tolist()
    cards = rng.integers(0, entities, n)
    now = int(time.time() * 1000) - n
    return [
        {
            "entity_id": f"card-{cards[i]}",
            "event_id": f"e-{i}",
            "event_time": now + i,
            "feature_set_version": version,
            "features": dict(zip(names, values[i])),
            "computed_at": now + i,
            # the event, as the features service writes it for the online store's event log (card's sources)
            "categories": {
                "channel": "pos",
                "country": "DE",
                "merchant_category": "5411",
                "merchant_id": f"m-{i % 97}",
            },
            "numbers": {"amount": round(abs(values[i][0]) * 100, 2)},
            "log_retention_ms": 86_700_000,
            "log_cap": 4096,
        }
        for i in range(n)
    ]


async def raw_hset(client: Any, writes: list[VectorWrite], per_field: list[dict[str, Any]] | None = None) -> float:
    """The floor: one HSET per vector, no compare, no TTL, pipelined per batch."""
    now = int(time.time() * 1000)
    start = time.perf_counter()
    for i in range(0, len(writes), BATCH):
        pipe = client.pipeline(transaction=False)
        for j in range(i, min(i + BATCH, len(writes))):
            w = writes[j]
            fields = per_field[j] if per_field else {"x": w.values}
            pipe.hset(w.key, mapping={"_ts": w.event_time_ms, "_e": w.event_id, "_v": w.version, "_w": now, **fields})
        await pipe.execute()
    return len(writes) / (time.perf_counter() - start)


async def ours(client: Any, writes: list[VectorWrite]) -> float:
    writer = OnlineStoreWriter(client, ttl_s=86_400)
    start = time.perf_counter()
    for i in range(0, len(writes), BATCH):
        await writer.write(writes[i : i + BATCH])
    return len(writes) / (time.perf_counter() - start)


async def kafka_to_redis(bootstrap: str, redis_url: str, vectors: list[dict[str, Any]]) -> float:
    """The whole service path: consume, decode Avro, compare-and-set in Redis, commit; pre-filled topic of
    vectors as the features service writes them (packed, definition order)."""
    prefix = await fresh_catalogue(bootstrap)
    topic = prefix + "kestrel.features.v1"
    serde = serde_for_topic(FileSchemaRegistry(), topic, "feature_vector")
    producer = Producer({"bootstrap.servers": bootstrap})
    await producer.start()
    for i in range(0, len(vectors), 5000):
        chunk = [dict(v, features={}, feature_values=list(v["features"].values())) for v in vectors[i : i + 5000]]
        await producer.send_many(
            OutRecord(topic, v, r["entity_id"].encode()) for v, r in zip(serde.serialize_many(chunk), chunk)
        )
    await producer.stop()
    app = SERVICE.app(
        FeatureWriterSettings(
            kafka_bootstrap=bootstrap,
            topic_prefix=prefix,
            redis_url=redis_url,
            key_prefix=f"{prefix}fs",
            group_id=f"{prefix}writer",
            metrics_port=0,
            health_port=0,
            log_level="WARNING",
        )
    )
    return await drain_rate(app, len(vectors))


async def paired(calls: int, raw: Any, ours: Any) -> tuple[list[float], list[float]]:
    """Latency samples of raw and ours, call by call in turn, so noise on the machine hits both alike."""
    samples: tuple[list[float], list[float]] = ([], [])
    for i in range(calls):
        for call, out in ((raw, samples[0]), (ours, samples[1])):
            start = time.perf_counter()
            await call(i)
            out.append(time.perf_counter() - start)
    return samples


async def raw_get_many(client: Any, keys: list[str]) -> list[Any]:
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.hgetall(key)
    return await pipe.execute()


async def fetch_rows(client: Any, store: OnlineStore, entities: list[str], quick: bool) -> list[Row]:
    calls = 2000 if quick else 10_000
    keys = [store.key(e) for e in entities]
    picks = np.random.default_rng(5).integers(0, len(keys), (calls, 100))
    cases = [
        (
            1,
            RAW_GET,
            lambda i: client.hgetall(keys[picks[i, 0]]),
            "OnlineStore.get, 1 entity",
            lambda i: store.get(entities[picks[i, 0]]),
        ),
        (
            100,
            RAW_GET_100,
            lambda i: raw_get_many(client, [keys[k] for k in picks[i]]),
            "OnlineStore.get_many, 100 entities",
            lambda i: store.get_many([entities[k] for k in picks[i]]),
        ),
    ]
    rows = []
    for size, raw_name, raw, name, ours in cases:
        await paired(200, raw, ours)  # warm up connections and the script cache
        raw_samples, our_samples = await paired(calls // (10 if size > 1 else 1), raw, ours)
        rows.append(
            Row(
                GROUP,
                raw_name,
                size * len(raw_samples) / sum(raw_samples),
                *latency_ms(raw_samples),
                notes="concurrency 1; entities/s; bytes as Redis returns them",
            )
        )
        rows.append(
            Row(
                GROUP,
                name,
                size * len(our_samples) / sum(our_samples),
                *latency_ms(our_samples),
                baseline=raw_name,
                notes="concurrency 1; entities/s; float64 arrays in definition order, with age",
            )
        )
    return rows


async def write_rows(client: Any, vectors: list[dict[str, Any]], width: int, rounds: int) -> list[Row]:
    """Raw and ours alternate on an emptied Redis each round (best round counts), so a noisy neighbour
    or a warming cache cannot favour one of them."""
    raw = [VectorWrite.from_record(v, "bench:raw") for v in vectors]
    writes = [VectorWrite.from_record(v) for v in vectors]
    bare = [VectorWrite.from_record({k: x for k, x in v.items() if k != "log_cap"}) for v in vectors]
    best = {"raw": 0.0, "ours": 0.0, "bare": 0.0}
    calls = (
        ("raw", lambda: raw_hset(client, raw)),
        ("ours", lambda: ours(client, writes)),
        ("bare", lambda: ours(client, bare)),
    )
    for _ in range(rounds):
        for name, call in calls:
            await client.flushall()
            best[name] = max(best[name], await call())
    quarter = len(vectors) // 4
    per_field = [{k: repr(x) for k, x in v["features"].items()} for v in vectors[:quarter]]
    await client.flushall()
    unpacked = await raw_hset(client, raw[:quarter], per_field)
    await client.flushall()
    return [
        Row(
            GROUP,
            RAW_WRITE,
            best["raw"],
            notes=f"{len(vectors):,} vectors of {width} features, {BATCH}/pipeline, pre-packed; best of {rounds}",
        ),
        Row(
            GROUP,
            "raw pipelined HSET (one field per feature)",
            unpacked,
            baseline=RAW_WRITE,
            notes="the unpacked layout, for comparison",
        ),
        Row(
            GROUP,
            "OnlineStoreWriter, vector only (compare-and-set + TTL)",
            best["bare"],
            baseline=RAW_WRITE,
            notes=f"Lua, 16 vectors per call (the default), one pipeline per batch; best of {rounds}",
        ),
        Row(
            GROUP,
            "OnlineStoreWriter (compare-and-set + event log + TTL)",
            best["ours"],
            baseline=RAW_WRITE,
            notes=f"each vector's event added to its card's log, pruned; best of {rounds}",
        ),
    ]


async def run(bootstrap: str, workdir: Path, quick: bool) -> list[Row]:
    n = 40_000 if quick else 200_000
    card = load_feature_set("card")
    vectors = sample_vectors(n, card.names, card.version_id, entities=50_000)
    server = RedisServer(workdir / "feature-writer")
    await server.start()
    client = redis_client(server.url)
    try:
        rows = await write_rows(client, vectors, len(card.names), rounds=2 if quick else 3)
        rows.append(
            Row(
                GROUP,
                "feature-writer Kafka to Redis",
                await kafka_to_redis(bootstrap, server.url, vectors),
                baseline=RAW_WRITE,
                notes="consume + Avro decode + write + commit, one process",
            )
        )
        store = OnlineStore(client, card)
        rows += await fetch_rows(client, store, sorted({v["entity_id"] for v in vectors}), quick)
        return rows
    finally:
        await client.aclose()
        await server.stop()
