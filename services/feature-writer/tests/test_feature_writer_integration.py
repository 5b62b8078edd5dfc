"""The feature-writer against real Kafka and Redis: newest per entity, dead letters, a Redis outage."""

from __future__ import annotations

import asyncio
import urllib.request
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from structlog.testing import capture_logs

from kestrel.common.runtime.app import Watched
from kestrel.devstack.ports import free_port
from kestrel.devstack.redis_server import RedisServer
from kestrel.feature_writer.service import SERVICE
from kestrel.feature_writer.settings import FeatureWriterSettings
from kestrel.online_store import redis_client

pytestmark = pytest.mark.integration


def settings(topics, redis_url: str, **overrides) -> FeatureWriterSettings:
    base = dict(
        kafka_bootstrap=topics.bootstrap,
        topic_prefix=topics.prefix,
        redis_url=redis_url,
        key_prefix=topics.key_prefix,
        group_id=f"g-{topics.prefix}",
        metrics_port=0,
        health_port=0,
        session_timeout_ms=3000,
        max_batch=300,
        retry_initial_s=0.05,
        retry_max_s=0.5,
    )
    return FeatureWriterSettings(**{**base, **overrides})


async def test_writes_the_newest_vector_per_entity_and_dead_letters_bad_records(
    kafka, redis_server, topics, send, make_vectors
):
    vectors = make_vectors(3000, entities=200)
    vectors.append(dict(vectors[0], features={"alpha": 1.0}))  # claims card.v1 but lacks its features
    vectors[-1]["feature_set_version"] = "card.v1"
    app = SERVICE.app(settings(topics, redis_server.url))
    client = redis_client(redis_server.url)
    await app.start()
    try:
        await send(vectors, raw=[b"not avro"])
        await topics.wait_for_state(client, topics.expected(vectors[:-1]))
        records = await topics.read(topics.dead_letters, 2)
        assert len(records) == 2 and app.runtime.ready()
    finally:
        await app.stop()
        await client.aclose()


async def test_without_the_redis_replicas_it_waits_for_nothing_is_committed_and_it_says_why(
    redis_server, topics, send, make_vectors
):
    vectors = make_vectors(200, entities=40, seed=3)
    group = f"g-wait-{topics.prefix}"
    waiting = SERVICE.app(
        settings(topics, redis_server.url, group_id=group, redis_wait_replicas=1, redis_wait_timeout_ms=50)
    )
    with capture_logs() as logs:
        await waiting.start()
        try:
            await send(vectors)
            async with asyncio.timeout(20):
                while waiting.runtime.ready():
                    await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)
        finally:
            await waiting.stop()
    assert await committed(topics.bootstrap, group) == 0
    errors = {e.get("error") for e in logs if e["event"] == "batch_retry"}
    assert any("0 of 1 replicas acknowledged the batch within 50 ms" in str(e) for e in errors), errors

    app, client = SERVICE.app(settings(topics, redis_server.url, group_id=group)), redis_client(redis_server.url)
    await app.start()
    try:
        await topics.wait_for_state(client, topics.expected(vectors))
        async with asyncio.timeout(20):
            while await committed(topics.bootstrap, group) < len(vectors):
                await asyncio.sleep(0.1)
    finally:
        await app.stop()
        await client.aclose()


async def committed(bootstrap: str, group: str) -> int:
    """Records the group has committed past, over all partitions."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
        return sum(max(0, meta.offset) for meta in offsets.values())
    finally:
        await admin.close()


class PersistentRedis(RedisServer):
    """Keeps its data across a restart (append-only file), as a production Redis would."""

    def _command(self) -> list[str]:
        return [*super()._command(), "--appendonly", "yes", "--appendfsync", "always"]


async def test_redis_outage_pauses_writing_and_loses_nothing(tmp_path: Path, topics, send, make_vectors):
    server = PersistentRedis(tmp_path)
    await server.start()
    port = free_port()
    app = SERVICE.app(settings(topics, server.url, health_port=port))
    client = redis_client(server.url)
    vectors = make_vectors(2000, entities=150, seed=2)
    await app.start()
    try:
        await send(vectors[:1000])
        await topics.wait_for_state(client, topics.expected(vectors[:1000]))
        await server.stop()
        await send(vectors[1000:])
        async with asyncio.timeout(20):
            while app.runtime.ready():
                await asyncio.sleep(0.05)
        consumer = app.part(Watched).loop
        processed = consumer.processed
        await asyncio.sleep(1.0)
        assert consumer.processed == processed  # retrying the same batch, nothing committed
        assert await asyncio.to_thread(http_status, port, "/readyz") == 503
        assert await asyncio.to_thread(http_status, port, "/healthz") == 200
        await server.start()
        await topics.wait_for_state(client, topics.expected(vectors))
        assert app.runtime.ready() and await asyncio.to_thread(http_status, port, "/readyz") == 200
    finally:
        await app.stop()
        await client.aclose()
        await server.stop()


def http_status(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
