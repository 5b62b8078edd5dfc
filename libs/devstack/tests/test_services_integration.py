"""Fault drill on real servers: `kestrel-stack kill features` then `restart features` loses no event."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from kestrel.common.serde import make_registry, serde_for_topic
from kestrel.common.settings import KafkaSettings
from kestrel.common.topics import load_catalogue
from kestrel.devstack.process import is_running
from kestrel.devstack.services import runnable, stack_env
from kestrel.devstack.stack import ADDRESSES
from kestrel.devstack.supervisor import Supervisor
from kestrel.devstack.topics import apply_topics
from kestrel.simulator.generator import GeneratorConfig
from kestrel.simulator.runner import RunConfig
from kestrel.simulator.runner import run as simulate
from kestrel.simulator.settings import SimulatorSettings

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-m", "kestrel.devstack.cli"]


@pytest.fixture
async def running(kafka: Any, redis_server: Any, tmp_path: Path) -> AsyncIterator[tuple[Supervisor, dict[str, str]]]:
    """The services that need only Kafka and Redis (ingest, features, feature-writer, alerting) as processes on
    this test's own copy of the topics."""
    prefix = f"t{uuid4().hex[:8]}."
    await apply_topics(kafka.bootstrap, load_catalogue(), prefix=prefix)
    addresses = {
        "kafka_bootstrap": kafka.bootstrap,
        "redis_url": redis_server.url,
        "schema_registry_store": str(tmp_path / "schema-registry.json"),
    }
    env = stack_env(addresses) | {"KESTREL_TOPIC_PREFIX": prefix, "KESTREL_LOG_LEVEL": "INFO"}
    supervisor = Supervisor(tmp_path, env, runnable(addresses, ADDRESSES))
    await supervisor.start()
    task = asyncio.create_task(supervisor.supervise())
    try:
        await supervisor.wait_ready(timeout=120)
        yield supervisor, env
    finally:
        task.cancel()
        await supervisor.stop()


async def cli(state_dir: Path, *args: str) -> str:
    command = await asyncio.create_subprocess_exec(
        *CLI, "--state-dir", str(state_dir), *args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(command.communicate(), 180)
    assert command.returncode == 0, out.decode()
    return out.decode()


class Ids:
    """Reads a topic from the start, collecting the event ids of its records."""

    def __init__(self, env: dict[str, str], topic: str, schema: str) -> None:
        settings = KafkaSettings(
            kafka_bootstrap=env["KESTREL_KAFKA_BOOTSTRAP"], schema_registry_store=env["KESTREL_SCHEMA_REGISTRY_STORE"]
        )
        self.topic = env["KESTREL_TOPIC_PREFIX"] + topic
        self.serde = serde_for_topic(make_registry(settings), self.topic, schema)
        self.partitions = load_catalogue()[topic].partitions
        self.bootstrap, self.seen = settings.kafka_bootstrap, set[str]()

    async def __aenter__(self) -> Ids:
        self.consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await self.consumer.start()
        self.consumer.assign([TopicPartition(self.topic, p) for p in range(self.partitions)])
        await self.consumer.seek_to_beginning()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.consumer.stop()

    async def read(self) -> set[str]:
        for records in (await self.consumer.getmany(timeout_ms=500, max_records=50_000)).values():
            self.seen.update(self.serde.deserialize(r.value)["event_id"] for r in records)
        return self.seen


async def test_kill_then_restart_features_loses_no_event(
    running: tuple[Supervisor, dict[str, str]], tmp_path: Path
) -> None:
    supervisor, env = running
    ps = json.loads(await cli(tmp_path, "ps", "--json"))
    pids = {row["name"]: row["pid"] for row in ps}
    assert set(pids) == {"ingest-0", "features-0", "feature-writer-0", "alerting-0"}
    assert len(set(pids.values())) == 4 and all(is_running(pid) for pid in pids.values())

    settings = SimulatorSettings(
        kafka_bootstrap=env["KESTREL_KAFKA_BOOTSTRAP"],
        schema_registry_store=env["KESTREL_SCHEMA_REGISTRY_STORE"],
        topic_prefix=env["KESTREL_TOPIC_PREFIX"],
    )
    stop = asyncio.Event()
    traffic = asyncio.create_task(
        simulate(
            RunConfig(to="kafka", rate=300, generator=GeneratorConfig(labels=False), settings=settings, progress="off"),
            stop,
        )
    )
    await asyncio.sleep(2.0)  # events before the kill
    assert "killed: features-0" in await cli(tmp_path, "kill", "features")
    assert not is_running(pids["features-0"])
    await asyncio.sleep(2.0)  # events while features is down
    down = {row["name"]: row for row in json.loads(await cli(tmp_path, "ps", "--json"))}
    assert down["features-0"]["state"] == "killed" and down["ingest-0"]["pid"] == pids["ingest-0"]
    assert "restarted: features-0" in await cli(tmp_path, "restart", "features")
    await asyncio.sleep(2.0)  # events after the restart
    stop.set()
    sent = await traffic
    assert sent.sent > 1_500

    async with (
        Ids(env, "kestrel.events.v1", "event") as events,
        Ids(env, "kestrel.features.v1", "feature_vector") as vectors,
    ):
        deadline = time.monotonic() + 120
        while len(await events.read()) < sent.sent and time.monotonic() < deadline:
            pass
        while (missing := events.seen - await vectors.read()) and time.monotonic() < deadline:
            pass
    assert len(events.seen) == sent.sent
    assert not missing, f"{len(missing)} of {len(events.seen)} events have no feature vector"
    after = {row["name"]: row for row in json.loads(await cli(tmp_path, "ps", "--json"))}
    assert after["features-0"]["pid"] != pids["features-0"] and after["features-0"]["restarts"] == 1
