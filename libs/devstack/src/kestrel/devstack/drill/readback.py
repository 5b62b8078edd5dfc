"""Thin readers for the drill: every record of a topic between two offsets, the prediction log, Redis vectors."""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterable, Mapping
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from kestrel.common.avro import AvroSerde
from kestrel.featureset import load_feature_set
from kestrel.online_store import OnlineStore, redis_client

Offsets = Mapping[TopicPartition, int]
READ_CHUNK = 500
"""Cards per Redis read: each brings its whole event log."""


async def read_topic(bootstrap: str, serde: AvroSerde, start: Offsets, end: Offsets) -> list[dict[str, Any]]:
    """Every record of the partitions in `start`, from there up to `end`, decoded (undecodable ones skipped:
    they are the dead-letter topics' business)."""
    wanted = {tp: end[tp] for tp in start if end[tp] > start[tp]}
    if not wanted:
        return []
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, max_partition_fetch_bytes=1 << 22)
    await reader.start()
    out: list[dict[str, Any]] = []
    try:
        reader.assign(list(wanted))
        for tp in wanted:
            reader.seek(tp, start[tp])
        while [tp for tp, stop in wanted.items() if await reader.position(tp) < stop]:
            for tp, records in (await reader.getmany(timeout_ms=500, max_records=5000)).items():
                values = [r.value for r in records if r.offset < wanted[tp] and r.value is not None]
                out += [v for v in serde.deserialize_many(values, errors="return") if isinstance(v, dict)]
    finally:
        await reader.stop()
    return out


async def logged_predictions(dsn: str, event_ids: Collection[str]) -> list[tuple[str, Hashable]]:
    """(event id, what the row says) for each stream prediction row logged for these events."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT event_id, prediction_id, model_version, score FROM predictions"
            " WHERE source = 'stream' AND event_id = ANY($1::text[])",
            list(event_ids),
        )
    finally:
        await conn.close()
    return [(r["event_id"], (r["prediction_id"], r["model_version"], r["score"])) for r in rows]


async def online_state(
    redis_url: str, key_prefix: str, cards: Iterable[str]
) -> tuple[list[tuple[str, Hashable]], dict[str, tuple[int, str]], dict[str, int]]:
    """What Redis holds for these cards: each event-log member as (event id, content); per card found, the
    (event time, event id) of its vector; per card, the time after which its log is complete."""
    client = redis_client(redis_url)
    store = OnlineStore(client, load_feature_set(), prefix=key_prefix)
    members: list[tuple[str, Hashable]] = []
    vectors: dict[str, tuple[int, str]] = {}
    complete: dict[str, int] = {}
    cards = sorted(cards)
    try:
        for begin in range(0, len(cards), READ_CHUNK):
            for vector in await store.get_many(cards[begin : begin + READ_CHUNK], with_log=True):
                if not vector.found or vector.event_time_ms is None or vector.event_id is None or vector.log is None:
                    continue
                vectors[vector.entity_id] = (vector.event_time_ms, vector.event_id)
                complete[vector.entity_id] = vector.log.complete_from
                members += [(e.event_id, (e.event_time_ms, e.numbers, e.categories)) for e in vector.log.events]
    finally:
        await client.aclose()
    return members, vectors, complete
