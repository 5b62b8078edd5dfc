"""A Redis server process without persistence: the online store is rebuilt from Kafka."""

from __future__ import annotations

import shutil
from pathlib import Path

import redis.asyncio as aioredis

from kestrel.devstack.ports import HOST, pick_port, wait_connectable
from kestrel.devstack.process import ComponentError, ServerProcess


class RedisServer(ServerProcess):
    """redis-server on 127.0.0.1:`port`; its log is `<state_dir>/redis/redis.log`.

    No persistence, on purpose: the embedded stack serves development and tests, where a Redis restart
    emptying the store costs nothing (entities come back with their next vector, or after a group offset
    reset), while an append-only file would add disk writes to every test on a shared machine. Tests of
    durability add it themselves; compose runs Redis with AOF (appendfsync everysec), see docs/online-store.md.
    """

    name = "redis"
    stop_grace = 10.0
    start_timeout = 20.0

    def __init__(self, state_dir: Path, port: int | None = None, executable: str | None = None) -> None:
        super().__init__(state_dir)
        self.port = pick_port(port)
        self.executable = executable or shutil.which("redis-server") or "/usr/bin/redis-server"

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    async def _prepare(self) -> None:
        if not Path(self.executable).exists():
            raise ComponentError(self.name, f"{self.executable} not found; run scripts/bootstrap.sh")

    def _command(self) -> list[str]:
        return [
            self.executable,
            "--port", str(self.port),
            "--bind", HOST,
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--dir", str(self.home),
            "--logfile", "",
        ]  # fmt: skip

    async def _probe(self) -> None:
        await wait_connectable(self.port)
        client = aioredis.Redis.from_url(self.url, socket_timeout=2)
        try:
            await client.ping()
        finally:
            await client.aclose()
