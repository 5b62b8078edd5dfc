"""WAIT after each batch against real redis-servers: a batch counts as written only once enough replicas hold it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kestrel.common.errors import UnavailableError
from kestrel.devstack.ports import HOST
from kestrel.devstack.redis_server import RedisServer
from kestrel.online_store import OnlineStoreWriter, VectorWrite, redis_client

pytestmark = pytest.mark.integration


class ReplicaRedis(RedisServer):
    """A redis-server replicating `primary`."""

    def __init__(self, state_dir: Path, primary: RedisServer) -> None:
        super().__init__(state_dir)
        self.primary = primary

    def _command(self) -> list[str]:
        return [*super()._command(), "--replicaof", HOST, str(self.primary.port)]


def vectors(prefix: str, n: int = 20) -> list[VectorWrite]:
    return [VectorWrite(f"{prefix}:t.v1:{{e{i}}}", 1000 + i, f"e-{i}", "t.v1", b"\x00" * 8) for i in range(n)]


@pytest.fixture
async def primary(tmp_path: Path) -> AsyncIterator[RedisServer]:
    server = RedisServer(tmp_path / "primary")
    await server.start()
    yield server
    await server.stop()


async def test_too_few_replicas_leave_the_batch_unwritten_and_say_why(primary: RedisServer, prefix: str) -> None:
    client = redis_client(primary.url)
    try:
        waiting = OnlineStoreWriter(client, ttl_s=60, wait_replicas=1, wait_timeout_ms=50)
        with pytest.raises(UnavailableError, match="0 of 1 replicas acknowledged the batch within 50 ms"):
            await waiting.write(vectors(prefix))
        result = await OnlineStoreWriter(client, ttl_s=60).write(vectors(prefix, 21))
        assert (result.written, result.older) == (1, 20)  # the refused batch did reach the primary: resent, no harm
    finally:
        await client.aclose()


async def test_a_batch_held_by_the_replica_is_written(tmp_path: Path, primary: RedisServer, prefix: str) -> None:
    replica = ReplicaRedis(tmp_path / "replica", primary)
    await replica.start()
    client, reader = redis_client(primary.url), redis_client(replica.url)
    try:
        await linked(reader)
        writer = OnlineStoreWriter(client, ttl_s=60, wait_replicas=1, wait_timeout_ms=2000)
        assert (await writer.write(vectors(prefix))).written == 20
        assert len([k async for k in reader.scan_iter(match=f"{prefix}:*")]) == 20  # on the replica already
    finally:
        await client.aclose()
        await reader.aclose()
        await replica.stop()


async def linked(replica: Any, timeout_s: float = 20) -> None:
    async with asyncio.timeout(timeout_s):
        while (await replica.info("replication")).get("master_link_status") != "up":
            await asyncio.sleep(0.05)
