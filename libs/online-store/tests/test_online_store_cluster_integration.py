"""The online store on a real three-node Redis Cluster: hash-tagged keys, per-slot script calls, NOSCRIPT."""

from __future__ import annotations

import asyncio
import random
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field

import pytest

from kestrel.devstack.ports import free_port, is_free
from kestrel.devstack.redis_server import RedisServer
from kestrel.online_store import OnlineStore, OnlineStoreWriter, VectorWrite, redis_client

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("redis-cli") is None, reason="redis-cli is not installed"),
]


class ClusterNode(RedisServer):
    """A cluster-enabled redis-server; its bus port is any free one (the default, port + 10000, may be taken)."""

    def __init__(self, state_dir) -> None:
        super().__init__(state_dir, port=_free_port_below(55_535))  # redis refuses higher ports in cluster mode
        self.bus_port = free_port()

    def _command(self) -> list[str]:
        return [
            *super()._command(),
            "--cluster-enabled",
            "yes",
            "--cluster-port",
            str(self.bus_port),
            "--cluster-config-file",
            str(self.home / "nodes.conf"),
            "--cluster-node-timeout",
            "2000",
        ]


def _free_port_below(limit: int) -> int:
    while True:
        port = random.randrange(20_000, limit)
        if is_free(port):
            return port


@dataclass(frozen=True)
class Layout:
    version_id: str = "t.v1"
    names: list[str] = field(default_factory=lambda: ["b", "a"])
    defaults: list[float] = field(default_factory=lambda: [0.0, 0.0])


@pytest.fixture(scope="module")
async def cluster(tmp_path_factory):
    nodes = [ClusterNode(tmp_path_factory.mktemp(f"node{i}")) for i in range(3)]
    await asyncio.gather(*(n.start() for n in nodes))
    try:
        create = [
            "redis-cli",
            "--cluster",
            "create",
            *(f"127.0.0.1:{n.port}" for n in nodes),
            "--cluster-replicas",
            "0",
            "--cluster-yes",
        ]
        result = await asyncio.to_thread(subprocess.run, create, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        await _wait_ok(nodes)
        yield nodes
    finally:
        await asyncio.gather(*(n.stop() for n in nodes))


async def _wait_ok(nodes: list[ClusterNode]) -> None:
    async with asyncio.timeout(30):
        for node in nodes:
            client = redis_client(node.url)
            while b"cluster_state:ok" not in await client.execute_command("CLUSTER", "INFO"):
                await asyncio.sleep(0.1)
            await client.aclose()


async def test_writes_and_reads_spread_over_the_cluster_in_one_call_each(cluster):
    client = redis_client(cluster[0].url, cluster=True)
    prefix = f"t-{uuid.uuid4().hex}:fs"
    try:
        writer, store = OnlineStoreWriter(client, ttl_s=60), OnlineStore(client, Layout(), prefix=prefix)
        records = [
            {
                "entity_id": f"card-{i}",
                "event_id": "e",
                "event_time": 10 + i,
                "feature_set_version": "t.v1",
                "features": {"a": float(i), "b": -float(i)},
                "categories": {"merchant": f"m{i % 7}"},
                "numbers": {"amount": float(i)},
                "log_retention_ms": 1000,
                "log_cap": 10,
            }
            for i in range(300)
        ]
        await client.script_flush()  # the first write must load the script on every primary itself
        result = await writer.write([VectorWrite.from_record(r, prefix) for r in records])
        assert result.written == 300
        older = [VectorWrite.from_record(dict(r, event_time=1, event_id="e-old"), prefix) for r in records]
        assert (await writer.write(older)).older == 300
        batch = await store.get_many([f"card-{i}" for i in range(0, 300, 3)] + ["nobody"])
        assert batch.found.sum() == 100 and not batch.found[-1]
        assert batch.values[:3].tolist() == [[0.0, 0.0], [-3.0, 3.0], [-6.0, 6.0]]
        assert all(count > 50 for count in await _key_counts(cluster))  # hash tags spread entities over nodes
        assert (await store.get("card-7")).values.tolist() == [-7.0, 7.0]
        logs = (await store.get_many([f"card-{i}" for i in range(20)], with_log=True)).logs
        assert logs is not None  # both writes' events: the older one joined the log though its vector did not
        assert [[(e.event_time_ms, e.categories) for e in log.events] for log in logs] == [
            [(1, (f"m{i % 7}",)), (10 + i, (f"m{i % 7}",))] for i in range(20)
        ]
    finally:
        await client.aclose()


async def _key_counts(nodes: list[ClusterNode]) -> list[int]:
    counts = []
    for node in nodes:
        client = redis_client(node.url)
        counts.append(await client.dbsize())
        await client.aclose()
    return counts
