"""SIGKILL the features worker and the feature-writer mid-stream, restart both: Redis ends as offline says."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any
from uuid import uuid4

import numpy as np
import pytest

from kestrel.featureset import load_feature_set
from kestrel.featureset.offline import compute
from kestrel.online_store import OnlineStore, redis_client

from .streams import catalogue, fixed_events, produce

pytestmark = pytest.mark.integration


def newest_per_card(events: list[dict[str, Any]]) -> dict[str, tuple[int, str, list[float]]]:
    """What an uninterrupted run leaves in Redis: per card, the accepted event newest by (time, id)."""
    best: dict[str, tuple[int, str, list[float]]] = {}
    for event, vector in zip(events, compute(events, load_feature_set())):
        if vector is None:
            continue
        candidate = (event["event_time"], event["event_id"], vector)
        current = best.get(event["entity_id"])
        if current is None or candidate[:2] > current[:2]:
            best[event["entity_id"]] = candidate
    return best


def start(module: str, prefix: str, settings: dict[str, Any], log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, **{f"{prefix}{k}": str(v) for k, v in settings.items()}}
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", module], env=env, stdout=out, stderr=subprocess.STDOUT)


async def redis_matches(store: OnlineStore, expected: dict[str, tuple[int, str, list[float]]]) -> bool:
    cards = sorted(expected)
    batch = await store.get_many(cards)
    want = np.array([expected[c][2] for c in cards])
    times = np.array([expected[c][0] for c in cards])
    return bool(
        batch.found.all()
        and (batch.event_time_ms == times).all()
        and np.allclose(batch.values, want, rtol=0, atol=1e-9)
    )


async def test_sigkill_both_services_mid_stream_then_redis_equals_uninterrupted_run(kafka, redis_server, tmp_path):
    events = fixed_events(6_000, cards=200, seed=11)
    expected = newest_per_card(events)
    key_prefix = f"t{uuid4().hex[:8]}:fs"
    client = redis_client(redis_server.url)
    store = OnlineStore(client, load_feature_set(), prefix=key_prefix)
    async with catalogue(kafka.bootstrap) as prefix:
        features_env = {
            "KAFKA_BOOTSTRAP": kafka.bootstrap,
            "TOPIC_PREFIX": prefix,
            "GROUP_ID": f"f-{prefix}",
            "METRICS_PORT": 0,
            "HEALTH_PORT": 0,  # no fixed port: another features process on the host held 8080 and this one exited
            "CHANGELOG_REPLICATION": 1,
            "SESSION_TIMEOUT_MS": 3000,
            "HEARTBEAT_INTERVAL_MS": 300,
            "COMMIT_INTERVAL_S": 0.2,
            "LOG_FORMAT": "json",
        }
        writer_env = {
            "KAFKA_BOOTSTRAP": kafka.bootstrap,
            "TOPIC_PREFIX": prefix,
            "GROUP_ID": f"w-{prefix}",
            "REDIS_URL": redis_server.url,
            "KEY_PREFIX": key_prefix,
            "METRICS_PORT": 0,
            "HEALTH_PORT": 0,
            "SESSION_TIMEOUT_MS": 2000,
            "MAX_BATCH": 500,
            "LOG_FORMAT": "json",
        }

        def launch() -> list[subprocess.Popen[bytes]]:
            return [
                start("kestrel.features", "KESTREL_FEATURES_", features_env, tmp_path / "features.log"),
                start("kestrel.feature_writer", "KESTREL_FEATURE_WRITER_", writer_env, tmp_path / "writer.log"),
            ]

        procs = launch()
        try:
            events_topic = f"{prefix}kestrel.events.v1"
            await produce(kafka.bootstrap, events_topic, events[:2_000], garbage=False)
            async with asyncio.timeout(60):  # both services are up and writing
                while not [k async for k in client.scan_iter(match=f"{key_prefix}:*", count=100)]:
                    await asyncio.sleep(0.1)

            async def rest() -> None:
                for begin in range(2_000, len(events), 250):
                    await produce(kafka.bootstrap, events_topic, events[begin : begin + 250], garbage=False)
                    await asyncio.sleep(0.1)

            streaming = asyncio.create_task(rest())
            await asyncio.sleep(0.5)
            assert not streaming.done(), "the stream ended before the kill"
            for proc in procs:
                proc.send_signal(signal.SIGKILL)
                assert await asyncio.to_thread(proc.wait, 10) == -signal.SIGKILL
            procs = launch()
            await streaming
            async with asyncio.timeout(120):
                while not await redis_matches(store, expected):
                    await asyncio.sleep(0.5)
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
                assert await asyncio.to_thread(proc.wait, 30) == 0
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            await client.aclose()
