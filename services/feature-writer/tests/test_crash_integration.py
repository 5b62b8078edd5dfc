"""SIGKILL the writer process mid-stream, restart it: Redis ends exactly as after an uninterrupted run."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kestrel.online_store import redis_client

pytestmark = pytest.mark.integration


def start_writer(topics, redis_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        **{
            f"KESTREL_FEATURE_WRITER_{k}": str(v)
            for k, v in {
                "KAFKA_BOOTSTRAP": topics.bootstrap,
                "TOPIC_PREFIX": topics.prefix,
                "REDIS_URL": redis_url,
                "KEY_PREFIX": topics.key_prefix,
                "GROUP_ID": f"g-{topics.prefix}",
                "METRICS_PORT": 0,
                "HEALTH_PORT": 0,
                "SESSION_TIMEOUT_MS": 2000,
                "MAX_BATCH": 500,
                "LOG_FORMAT": "json",
            }.items()
        },
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "kestrel.feature_writer"], env=env, stdout=out, stderr=subprocess.STDOUT
        )


async def test_sigkill_mid_stream_then_restart_matches_an_uninterrupted_run(
    tmp_path, redis_server, topics, send, make_vectors
):
    vectors = make_vectors(16_000, entities=1500, seed=3)
    client = redis_client(redis_server.url)
    log = tmp_path / "writer.log"
    writer = start_writer(topics, redis_server.url, log)
    try:
        await send(vectors[:8000])
        async with asyncio.timeout(30):
            while not [k async for k in client.scan_iter(match=f"{topics.key_prefix}:*", count=100)]:
                await asyncio.sleep(0.05)

        async def rest() -> None:
            for start in range(8000, len(vectors), 1000):
                await send(vectors[start : start + 1000])
                await asyncio.sleep(0.1)

        streaming = asyncio.create_task(rest())
        await asyncio.sleep(0.3)
        assert not streaming.done(), "the stream ended before the kill"
        writer.send_signal(signal.SIGKILL)
        assert await asyncio.to_thread(writer.wait, 10) == -signal.SIGKILL
        writer = start_writer(topics, redis_server.url, log)
        await streaming
        await topics.wait_for_state(client, topics.expected(vectors), timeout_s=60)
        writer.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(writer.wait, 30) == 0, log.read_text()[-3000:]
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
        await client.aclose()
