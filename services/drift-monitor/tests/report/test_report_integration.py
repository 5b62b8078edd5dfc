"""`kestrel-drift report` against a real broker and a real PostgreSQL: the topic and table sources."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from kestrel.common.registry import FileSchemaRegistry
from kestrel.common.serde import serde_for_topic
from kestrel.common.topics import TopicCatalogue, load_catalogue
from kestrel.devstack.topics import apply_topics
from kestrel.drift_monitor.report import ReportSettings, Selection, main, read_postgres, read_topic, select

pytestmark = pytest.mark.integration

TOPIC = "kestrel.drift-reports.v1"


async def test_reports_are_read_from_the_topic(kafka: Any, tmp_path: Path, make_report) -> None:
    prefix, store = f"t-{uuid4().hex}.", tmp_path / "registry.json"
    await apply_topics(kafka.bootstrap, TopicCatalogue((load_catalogue()[TOPIC],)), prefix=prefix)
    serde = serde_for_topic(FileSchemaRegistry(store=store), prefix + TOPIC, "drift_report")
    reports = [make_report(i, model_version=v) for i, v in enumerate(["7", "7", "8", "7"])]
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap)
    await producer.start()
    try:
        for r in reports:
            await producer.send_and_wait(prefix + TOPIC, serde.serialize(r), key=r["subject"].encode())
    finally:
        await producer.stop()
    settings = ReportSettings(kafka_bootstrap=kafka.bootstrap, topic_prefix=prefix, schema_registry_store=str(store))

    read = await read_topic(settings)

    assert sorted(r["report_id"] for r in read) == ["r-0", "r-1", "r-2", "r-3"]
    chosen = select(read, Selection(model_version="7", since=0))
    assert [r["report_id"] for r in chosen] == ["r-0", "r-1", "r-3"]
    assert chosen[0] == reports[0]


async def test_reports_are_read_from_the_table(
    postgres: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_report
) -> None:
    model = f"m-{uuid4().hex}"
    reports = [make_report(i, model_name=model) | {"report_id": f"{model}-{i}"} for i in range(4)]
    conn = await asyncpg.connect(postgres.dsn)
    try:
        await conn.executemany(
            "INSERT INTO drift_reports (report_id, created_at, subject, drifted, payload) VALUES ($1, $2, $3, $4, $5)",
            [
                (r["report_id"], _when(r["created_at"]), r["subject"], r["drifted"], json.dumps(r))
                for r in [*reports, make_report(0)]  # another model's report: not selected
            ],
        )
        since = reports[1]["window_start"]
        read = await read_postgres(conn, Selection(model_name=model, since=since))
    finally:
        await conn.close()

    assert [r["report_id"] for r in select(read, Selection(model_name=model, since=since))] == [
        f"{model}-{i}" for i in (1, 2, 3)
    ]
    out = tmp_path / "out.html"
    monkeypatch.setenv("KESTREL_DRIFT_MONITOR_POSTGRES_DSN", postgres.dsn)
    argv = ["report", "--from-postgres", "--model-name", model, "--report-id", f"{model}-2", "-o", str(out)]
    await asyncio.to_thread(main, argv)
    assert f"{model}-2" in out.read_text()


def _when(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)
