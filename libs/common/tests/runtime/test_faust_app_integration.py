"""A faust app's table changelog on the real 1-broker Kafka: replication capped, min.insync.replicas declared."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from kestrel.common.runtime.faust_app import FaustWorker, make_app
from kestrel.common.settings import KafkaSettings

pytestmark = pytest.mark.integration


class TableWorker(FaustWorker):
    async def declare(self, app: Any) -> None:
        app.Table("state", partitions=1)


async def test_a_table_changelog_gets_capped_replication_and_min_insync_replicas(kafka: Any, tmp_path: Path) -> None:
    app_id = f"t-{uuid4().hex[:10]}"
    settings = KafkaSettings(kafka_bootstrap=kafka.bootstrap)
    worker = TableWorker(
        lambda: make_app(settings, app_id, partitions=1, session_timeout_ms=6000, data_dir=str(tmp_path))
    )
    await worker.start()
    try:
        replicas, configs = await described(kafka.bootstrap, f"{app_id}-state-changelog")
    finally:
        await worker.stop()
    assert replicas == 1  # 3 asked (make_app's default), one broker here
    assert (configs["min.insync.replicas"], configs["cleanup.policy"]) == ("1", "compact")


async def described(bootstrap: str, topic: str, timeout_s: float = 60) -> tuple[int, dict[str, str]]:
    """Replicas of the topic once it exists, and the configs set on it (config source 1: the topic's own)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        async with asyncio.timeout(timeout_s):
            while topic not in await admin.list_topics():
                await asyncio.sleep(0.2)
        [info] = await admin.describe_topics([topic])
        keys = {"min.insync.replicas": None, "cleanup.policy": None}
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic, keys)])
        return len(info["partitions"][0]["replicas"]), {e[0]: e[1] for e in response.resources[0][4] if e[3] == 1}
    finally:
        await admin.close()
