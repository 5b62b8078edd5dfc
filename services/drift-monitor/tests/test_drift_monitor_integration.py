"""The drift monitor on real Kafka and PostgreSQL, beside the prediction logger: one report per window on the topic
and in PostgreSQL across a failed close retried, a restart and a SIGKILL; late predictions counted, not merged."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import numpy as np
import pytest
from aiokafka import AIOKafkaConsumer

from kestrel.common.kafka import OutRecord, Producer
from kestrel.common.registry import FileSchemaRegistry
from kestrel.common.serde import serde_for_topic
from kestrel.common.topics import dead_letter_topic
from kestrel.devstack.topics import PrefixedTopics
from kestrel.drift_monitor.service import SERVICE
from kestrel.drift_monitor.settings import DriftMonitorSettings
from kestrel.drift_monitor.sink import ReportSink
from kestrel.model.artifact import ModelArtifact, save
from kestrel.model.network import Network
from kestrel.model.reference import compute_reference
from kestrel.prediction_logger.service import SERVICE as LOGGER
from kestrel.prediction_logger.settings import PredictionLoggerSettings

pytestmark = pytest.mark.integration

PREDICTIONS, REPORTS = "kestrel.predictions.v1", "kestrel.drift-reports.v1"
CATALOGUE = (
    PREDICTIONS,
    "kestrel.events.v1",  # the events subject's source: the service checks it at start
    "kestrel.labels.v1",
    REPORTS,
    dead_letter_topic("prediction-logger"),
    dead_letter_topic("drift-monitor"),
)
NAMES = ("amount", "count_1h")
WINDOW_MS = 60_000
NET = Network(np.zeros(2), np.array([20.0, 3.0]), np.zeros(2, bool), ((np.array([[1.0], [0.2]]), np.array([-6.0])),))


def repository(root: Path, model: str) -> Path:
    """A model repository holding version 1 of `model`, its reference drawn from amount ~ N(100, 20)."""
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(100, 20, 5000), rng.integers(0, 9, 5000)]).astype(np.float64)
    reference = compute_reference(X, NET.predict(X), NAMES)
    save(ModelArtifact(model, 1, "t.v1", NAMES, NET, {}, {}, reference, "2026-12-01T00:00:00Z"), root)
    return root


class Traffic:
    """Predictions of one model version, entity-keyed over 200 cards (so every partition gets some)."""

    def __init__(self, model: str, rng: random.Random) -> None:
        self.model, self.rng, self.sent = model, rng, 0

    def window(self, start: int, n: int, shift: float = 0.0, at: int | None = None) -> list[dict[str, Any]]:
        return [self._one(start + (self.rng.randrange(WINDOW_MS) if at is None else at), shift) for _ in range(n)]

    def _one(self, event_time: int, shift: float) -> dict[str, Any]:
        self.sent += 1
        values = [self.rng.gauss(100 + shift, 20), float(self.rng.randrange(9))]
        return {
            "prediction_id": f"{self.model}-p{self.sent}",
            "event_id": f"{self.model}-e{self.sent}",
            "entity_id": f"card-{self.sent % 200}",
            "event_time": event_time,
            "model_name": self.model,
            "model_version": "1",
            "score": float(NET.predict(np.array([values]))[0]),
            "threshold": 0.4,
            "decision": False,
            "feature_set_version": "t.v1",
            "features": {},
            "feature_values": values,
            "features_age_ms": 5,
            "degraded": False,
            "flags": [],
            "latency_us": 100,
            "source": "stream",
            "predicted_at": event_time,
        }


async def reports_in_postgres(dsn: str, model: str, expected: int, timeout_s: float = 90) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(dsn)
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                rows = await conn.fetch(
                    "SELECT report_id, status, late_predictions, payload::text AS payload FROM drift_reports "
                    "WHERE model_name = $1 ORDER BY window_start",
                    model,
                )
                if len(rows) >= expected:
                    return [dict(r) for r in rows]
                await asyncio.sleep(0.3)
    finally:
        await conn.close()


async def test_one_report_per_window_in_postgres_and_on_the_topic_across_a_retry_a_restart_and_a_kill(
    kafka: Any, postgres: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = PrefixedTopics(kafka.bootstrap)
    await stream.apply(*CATALOGUE)
    model = f"m{uuid4().hex[:8]}"
    common = dict(kafka_bootstrap=kafka.bootstrap, topic_prefix=stream.prefix, postgres_dsn=postgres.dsn)
    quiet = dict(metrics_port=0, health_port=0, session_timeout_ms=3000)
    logger = LOGGER.app(PredictionLoggerSettings(**common, **quiet, group_id=f"log-{model}"))
    own = dict(
        group_id=f"drift-{model}",
        logger_group_id=f"log-{model}",
        logger_wait_s=30,
        window_s=WINDOW_MS // 1000,
        allowed_lateness_s=5,
        idle_partition_s=120,
        model_repository=repository(tmp_path, model),
        changelog_replication=1,
        commit_interval_s=0.2,
    )
    settings = DriftMonitorSettings(**common, **quiet, **own)
    failures = crash_once_after_publishing(monkeypatch)
    traffic = Traffic(model, random.Random(7))
    w0 = (int(time.time() * 1000) - 86_400_000) // WINDOW_MS * WINDOW_MS
    w1, w2, w3 = (w0 + k * WINDOW_MS for k in (1, 2, 3))
    producer = Producer({"bootstrap.servers": kafka.bootstrap})
    serde = serde_for_topic(FileSchemaRegistry(), stream.name(PREDICTIONS), "prediction")

    async def send(predictions: list[dict[str, Any]]) -> None:
        encoded = serde.serialize_many(predictions)
        await producer.send_many(
            [OutRecord(stream.name(PREDICTIONS), v, p["entity_id"].encode()) for v, p in zip(encoded, predictions)]
        )

    await producer.start()
    await logger.start()
    app, process = SERVICE.app(settings), None
    await app.start()
    try:
        await send(traffic.window(w0, 600) + traffic.window(w1, 300, shift=40))
        await stream.read(stream.name(REPORTS), 2)  # window 0 published twice: the failed attempt, then the retry
        [first] = await reports_in_postgres(postgres.dsn, model, 1)
        assert failures == [first["report_id"]]
        await app.stop()  # a restart: the state comes back from the changelog
        process = launch({**common, **quiet, **own}, tmp_path / "drift-monitor.log")
        await send(traffic.window(w0, 10))  # its window is closed: late
        await send(traffic.window(w1, 300, shift=40) + traffic.window(w2, 600, at=10_000))
        await reports_in_postgres(postgres.dsn, model, 2)
        process.send_signal(signal.SIGKILL)  # a crash, whether or not window 1's close was committed yet
        assert await asyncio.to_thread(process.wait, 10) == -signal.SIGKILL
        app = SERVICE.app(settings)
        await app.start()
        await send(traffic.window(w3, 200, at=10_000))
        rows = await reports_in_postgres(postgres.dsn, model, 3)
    finally:
        if process is not None and process.poll() is None:
            process.kill()
        await app.stop()
        await logger.stop()
        await producer.stop()
    check(rows, await published(stream, rows[-1]["report_id"]), stream)


def launch(settings: dict[str, Any], log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, **{f"KESTREL_DRIFT_MONITOR_{k.upper()}": str(v) for k, v in settings.items()}}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "kestrel.drift_monitor"], env=env, stdout=out, stderr=subprocess.STDOUT
        )


async def published(stream: PrefixedTopics, last_id: str, timeout_s: float = 30) -> list[Any]:
    """The reports topic from the beginning up to the report `last_id` (a window may appear twice before it)."""
    serde = serde_for_topic(FileSchemaRegistry(), stream.name(REPORTS), "drift_report")
    consumer = AIOKafkaConsumer(stream.name(REPORTS), bootstrap_servers=stream.bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        records: list[Any] = []
        async with asyncio.timeout(timeout_s):
            while not records or serde.deserialize(records[-1].value)["report_id"] != last_id:
                records += [r for batch in (await consumer.getmany(timeout_ms=200)).values() for r in batch]
        return records
    finally:
        await consumer.stop()


def crash_once_after_publishing(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The first report fails after it was written and published, before the loop could commit its close: the
    loop rewinds to its last commit point and closes the window again."""
    failed: list[str] = []
    observe = ReportSink._observe

    def failing(self: ReportSink, report: dict[str, Any], started: float) -> None:
        if not failed:
            failed.append(report["report_id"])
            raise ConnectionError("injected: crashed before the commit")
        observe(self, report, started)

    monkeypatch.setattr(ReportSink, "_observe", failing)
    return failed


def check(rows: list[dict[str, Any]], published: list[Any], stream: PrefixedTopics) -> None:
    assert len(rows) == 3
    w0, w1, w2 = (json.loads(r["payload"]) for r in rows)
    assert (w0["status"], w0["window_size"], w0["late_predictions"]) == ("ok", 600, 0)
    assert (w1["status"], w1["window_size"], w1["late_predictions"]) == ("drift", 600, 10)
    assert (w2["status"], w2["window_size"], w2["late_predictions"]) == ("ok", 600, 0)
    assert w1["drifted_features"][0] == "amount" and w1["log_complete"]
    assert (w1["performance"]["labelled"], w1["performance"]["threshold"]) == (0, 0.4)  # the rows' threshold
    serde = serde_for_topic(FileSchemaRegistry(), stream.name(REPORTS), "drift_report")
    ids = [serde.deserialize(r.value)["report_id"] for r in published]
    assert list(dict.fromkeys(ids)) == [w0["report_id"], w1["report_id"], w2["report_id"]]
    assert ids.count(w0["report_id"]) == 2 and ids.count(w1["report_id"]) in (1, 2)  # closed again after the kill
    assert {r.key for r in published} == {b"predictions"}
