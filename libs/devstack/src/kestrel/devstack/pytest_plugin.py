"""pytest fixtures with real servers (kafka, redis_server, postgres, triton) started once per session on demand,
and alertmanager_factory for a real Alertmanager per test.

Set KESTREL_STACK_ENV to a running stack's stack.env (`kestrel-stack up`) to reuse its servers instead.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
import pytest_asyncio
from aiokafka.admin import AIOKafkaAdminClient

from kestrel.common.topics import TopicCatalogue, TopicSpec
from kestrel.devstack import migrations
from kestrel.devstack.alertmanager import AlertmanagerServer
from kestrel.devstack.kafka import KafkaBroker
from kestrel.devstack.paths import model_repository
from kestrel.devstack.postgres import PostgresServer
from kestrel.devstack.record import StackRecord, read_env_file
from kestrel.devstack.redis_server import RedisServer
from kestrel.devstack.topics import apply_topics
from kestrel.devstack.triton import TritonEndpoint, TritonServer

STACK_ENV = "KESTREL_STACK_ENV"

TopicFactory = Callable[..., Awaitable[str]]
AlertmanagerFactory = Callable[[dict[str, Any]], Awaitable[AlertmanagerServer]]


@dataclass(frozen=True)
class KafkaEndpoint:
    bootstrap: str


@dataclass(frozen=True)
class RedisEndpoint:
    url: str


@dataclass(frozen=True)
class PostgresEndpoint:
    dsn: str


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: needs real servers (fixtures of kestrel.devstack.pytest_plugin)")


@pytest.fixture(scope="session")
def kestrel_stack_env() -> dict[str, str]:
    """Endpoints of an already running stack named by $KESTREL_STACK_ENV (its stack.env, plus what only the
    stack.json beside it records: PostgreSQL's DSN, Triton's HTTP URL); empty when servers start here."""
    path = os.environ.get(STACK_ENV)
    if not path:
        return {}
    found = StackRecord.load(Path(path).parent)
    return read_env_file(Path(path)) | (found.env if found is not None else {})


@pytest.fixture(scope="session")
def kestrel_state_dir() -> Iterator[Path]:
    """Data and logs of this session's servers; world-searchable because PostgreSQL may run as another user."""
    path = Path(tempfile.mkdtemp(prefix="kestrel-stack-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def kafka(kestrel_stack_env: dict[str, str], kestrel_state_dir: Path) -> AsyncIterator[Any]:
    """A running broker: `.bootstrap` is "127.0.0.1:port"."""
    if bootstrap := kestrel_stack_env.get("KESTREL_KAFKA_BOOTSTRAP"):
        yield KafkaEndpoint(bootstrap)
        return
    broker = KafkaBroker(kestrel_state_dir)
    broker.die_with_parent = True
    await broker.start()
    yield broker
    await broker.stop()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def redis_server(kestrel_stack_env: dict[str, str], kestrel_state_dir: Path) -> AsyncIterator[Any]:
    """A running Redis: `.url` is "redis://127.0.0.1:port/0"."""
    if url := kestrel_stack_env.get("KESTREL_REDIS_URL"):
        yield RedisEndpoint(url)
        return
    server = RedisServer(kestrel_state_dir)
    server.die_with_parent = True
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def postgres(kestrel_stack_env: dict[str, str], kestrel_state_dir: Path) -> AsyncIterator[Any]:
    """A running PostgreSQL with infra/postgres/migrations applied: `.dsn` is a postgresql:// URL."""
    if dsn := kestrel_stack_env.get("KESTREL_POSTGRES_DSN"):
        await migrations.apply(dsn)
        yield PostgresEndpoint(dsn)
        return
    server = PostgresServer(kestrel_state_dir)
    server.die_with_parent = True
    await server.start()
    await migrations.apply(server.dsn)
    yield server
    await server.stop()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def triton(kestrel_stack_env: dict[str, str], kestrel_state_dir: Path) -> AsyncIterator[Any]:
    """A running tritonserver over infra/triton/models (explicit model control): `.grpc_url`, `.http_url`."""
    if grpc_url := kestrel_stack_env.get("KESTREL_TRITON_URL"):
        yield TritonEndpoint(grpc_url, kestrel_stack_env["KESTREL_TRITON_HTTP_URL"])
        return
    server = TritonServer(kestrel_state_dir, model_repository())
    server.die_with_parent = True
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def topic_factory(kafka: Any) -> AsyncIterator[TopicFactory]:
    """`await topic_factory(partitions=3, retention_ms=60000)` creates a fresh `t-<uuid>` topic.

    Keyword arguments are topic configs with dots written as underscores; topics are deleted afterwards.
    """
    created: list[str] = []

    async def create(partitions: int = 3, **configs: Any) -> str:
        name = f"t-{uuid4().hex}"
        config = {key.replace("_", "."): value for key, value in configs.items()}
        spec = TopicSpec(name, key="test", value_schema="test", partitions=partitions, config=config)
        await apply_topics(kafka.bootstrap, TopicCatalogue((spec,)))
        created.append(name)
        return name

    yield create
    if created:
        await _delete_topics(kafka.bootstrap, created)


@pytest_asyncio.fixture(loop_scope="session")
async def alertmanager_factory(kestrel_state_dir: Path) -> AsyncIterator[AlertmanagerFactory]:
    """`await alertmanager_factory(config)` starts a real Alertmanager with that alertmanager.yml (a dict, e.g.
    kestrel.devstack.alertmanager.webhook_config(url)); `.url` is its API; stopped after the test."""
    started: list[AlertmanagerServer] = []

    async def start(config: dict[str, Any]) -> AlertmanagerServer:
        server = AlertmanagerServer(kestrel_state_dir / f"am-{uuid4().hex[:8]}", config)
        server.die_with_parent = True
        started.append(server)
        await server.start()
        return server

    yield start
    for server in started:
        await server.stop()


@pytest.fixture
def group_id() -> str:
    """A consumer group id of this test's own."""
    return f"g-{uuid4().hex}"


async def _delete_topics(bootstrap: str, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics(names)
    finally:
        await admin.close()
