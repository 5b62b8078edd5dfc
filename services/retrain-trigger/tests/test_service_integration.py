"""The retrain-trigger service in-process on the real broker, PostgreSQL and a tritonserver of its own: a request
by hand runs the job, the gate, the load, the shadow window and the promotion, each step once and in order on
the lifecycle topic and in the registry, across a restart; a gate that says no ends the run there; a challenger
worse on live traffic is rejected after its shadow window; alerts the policy refuses start nothing."""

from __future__ import annotations

import asyncio
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from argparse import Namespace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer
from prometheus_client import REGISTRY

from kestrel.common.avro import AvroSerde, load_schema
from kestrel.common.kafka import OutRecord, Producer
from kestrel.common.registry import FileSchemaRegistry
from kestrel.common.topics import dead_letter_topic
from kestrel.devstack.topics import PrefixedTopics
from kestrel.devstack.triton import TritonServer
from kestrel.prediction_logger.rows import prepare
from kestrel.prediction_logger.store import PostgresStore
from kestrel.registry import CHALLENGER, CHAMPION, REJECTED
from kestrel.registry.artifacts import describe
from kestrel.registry.store import Registry
from kestrel.retrain_trigger import cli
from kestrel.retrain_trigger.service import SERVICE
from kestrel.retrain_trigger.settings import RetrainTriggerSettings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
LIFECYCLE = AvroSerde(FileSchemaRegistry(), "lifecycle-value", load_schema("model_lifecycle"))
ALERTS = AvroSerde(FileSchemaRegistry(), "alerts-value", load_schema("alert"))
PROMOTED = ["retrain_requested", "retrain_started", "evaluated", "loaded", "shadow_started", "promoted"]
GATE_REJECTED = ["retrain_requested", "retrain_started", "evaluated", "rejected"]


@pytest.fixture
async def topics(kafka) -> PrefixedTopics:
    t = PrefixedTopics(kafka.bootstrap)
    await t.apply("kestrel.alerts.v1", "kestrel.model-lifecycle.v1", dead_letter_topic("retrain-trigger"))
    return t


@pytest.fixture
async def served(postgres, tmp_path, champion) -> Any:
    """A new model name with version 1 (the checked-in champion) registered as champion."""
    model = f"fraud_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(postgres.dsn)
    try:
        registry = Registry(conn)
        await registry.register(describe(champion(tmp_path / "registered", model)), actor="ci", reason="seed")
        await registry.promote(model, "1", actor="ci", reason="seed")
    finally:
        await conn.close()
    return model


@pytest.fixture
async def triton(tmp_path, served) -> Any:
    """A tritonserver of this test's own serving version 1 of the test's model."""
    repo = tmp_path / "models"
    shutil.copytree(
        ROOT / "infra" / "triton" / "models" / "kestrel_fraud",
        repo / served,
        ignore=shutil.ignore_patterns("__pycache__", "[2-9]*"),
    )
    config = repo / served / "config.pbtxt"
    config.write_text(re.sub(r'^name: ".*"$', f'name: "{served}"', config.read_text(), flags=re.MULTILINE))
    server = TritonServer(tmp_path / "state", repo, load_models=[served])
    server.die_with_parent = True
    await server.start()
    yield server, repo
    await server.stop()


def settings(topics, postgres, tmp_path, **overrides: Any) -> RetrainTriggerSettings:
    return RetrainTriggerSettings(**fields(topics, postgres, tmp_path, **overrides))


def fields(topics, postgres, tmp_path, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "kafka_bootstrap": topics.bootstrap,
        "topic_prefix": topics.prefix,
        "postgres_dsn": postgres.dsn,
        "triton_http_url": "http://127.0.0.1:1",
        "model_repository": str(tmp_path / "models"),
        "artifacts_dir": str(tmp_path / "artifacts"),
        "job_command": str(BIN / "kestrel-retrain-job"),
        "train_hours": 24 * 30,
        "shadow_s": 2.0,
        "tick_interval_s": 0.2,
        "session_timeout_ms": 3000,
        "data_dir": str(tmp_path / "faust"),
        "metrics_port": 0,
        "health_port": 0,
    }
    return base | overrides


async def test_a_request_by_hand_is_trained_gated_loaded_shadowed_and_promoted_across_a_restart(
    topics, postgres, tmp_path, wave, prediction_log, served, triton
):
    """The service is stopped in the shadow window and started again: the new one recovers the run from the
    runs table's changelog, replays what was not committed, ends the window and promotes, every step once."""
    server, repo = triton
    await prediction_log(postgres.dsn, served, *wave)
    s = settings(topics, postgres, tmp_path, triton_http_url=server.http_url, model_repository=str(repo), shadow_s=8)
    app = SERVICE.app(s)
    await app.start()
    try:
        await until(app.runtime.ready, 60)
        await cli.trigger(s, Namespace(model=served, reason="ci asks"))
        await lifecycle(topics, served, until_stage={"shadow_started", "rejected", "failed"})
    finally:
        await app.stop()
    assert "shadowing" in cli.status(s, served)
    app = SERVICE.app(s)
    await app.start()
    try:
        records = await lifecycle(topics, served, until_stage={"promoted", "rejected", "failed"})
        assert [r["stage"] for r in records] == PROMOTED, [(r["stage"], r["reason"]) for r in records]
        run_ids = {r["reason"][1:13] for r in records[1:]}
        assert len(run_ids) == 1  # one run, every step named by it
        evaluated = records[2]
        assert evaluated["version"] == "2" and evaluated["metrics"]["challenger_pr_auc"] > 0
        assert "promoted on the holdout" in records[-1]["reason"]  # no shadow labels in this test's log
        assert await version_ready(server, served, 1) and await version_ready(server, served, 2)
        await check_registry(postgres.dsn, served, run_ids.pop())

        refused = decisions(served, "refused")
        await cli.trigger(s, Namespace(model=served, reason="again, at once"))
        await until(lambda: decisions(served, "refused") > refused, 30)  # in cooldown
        assert [r["stage"] for r in await lifecycle(topics, served, count=len(PROMOTED) + 1)][-1] == "retrain_requested"
        assert "promoted" in cli.status(s, served) and served in cli.status(s, None)
    finally:
        await app.stop()


async def test_a_trigger_sigkilled_in_the_shadow_window_still_writes_every_lifecycle_step_once(
    topics, postgres, tmp_path, wave, prediction_log, served, triton
):
    """As deployed (its console script, its own process), SIGKILLed while the challenger is shadowed: the
    next process finishes the run, and each lifecycle step is on the topic once (issue 14, item 2).

    Killed the moment shadow_started is readable, before it can clear its outbox: without reading the topic
    back before publishing an outbox again, 2 runs of 3 had loaded and shadow_started twice."""
    server, repo = triton
    await prediction_log(postgres.dsn, served, *wave)
    values = fields(topics, postgres, tmp_path, triton_http_url=server.http_url, model_repository=str(repo), shadow_s=8)
    env = {**os.environ, **{f"KESTREL_RETRAIN_TRIGGER_{k.upper()}": str(v) for k, v in values.items()}}
    log = (tmp_path / "trigger.log").open("ab")
    first = subprocess.Popen([str(BIN / "kestrel-retrain-trigger")], env=env, stdout=log, stderr=log)
    try:
        await asyncio.sleep(5)  # joined and recovered; a request before that waits on the topic anyway
        await cli.trigger(RetrainTriggerSettings(**values), Namespace(model=served, reason="ci asks"))
        await lifecycle(topics, served, until_stage={"shadow_started", "rejected", "failed"})
        # The moment its records are readable: before this process can clear them from the run's outbox.
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    second = subprocess.Popen([str(BIN / "kestrel-retrain-trigger")], env=env, stdout=log, stderr=log)
    try:
        records = await lifecycle(topics, served, until_stage={"promoted", "rejected", "failed"})
        await asyncio.sleep(3)  # anything written twice would follow the last step
        again = await lifecycle(topics, served, count=len(records))
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(60)
    stages = [r["stage"] for r in again]
    assert stages == PROMOTED, (
        [(r["stage"], r["reason"]) for r in again],
        (tmp_path / "trigger.log").read_text()[-3000:],
    )
    assert len({r["reason"][1:13] for r in again[1:]}) == 1  # one run
    assert await version_ready(server, served, 2)


async def test_a_challenger_worse_on_live_traffic_than_on_its_holdout_is_rejected_after_the_shadow_window(
    topics, postgres, tmp_path, wave, prediction_log, served, triton
):
    server, repo = triton
    await prediction_log(postgres.dsn, served, *wave)
    s = settings(
        topics,
        postgres,
        tmp_path,
        triton_http_url=server.http_url,
        model_repository=str(repo),
        shadow_s=6,
        shadow_min_labels=100,
    )
    app = SERVICE.app(s)
    await app.start()
    try:
        await until(app.runtime.ready, 60)
        await cli.trigger(s, Namespace(model=served, reason="ci asks"))
        await lifecycle(topics, served, until_stage={"shadow_started", "rejected", "failed"})
        await log_shadow(postgres.dsn, served, "2", 400)  # scores that know nothing of the labels
        records = await lifecycle(topics, served, until_stage={"promoted", "rejected", "failed"})
        assert [r["stage"] for r in records][-1] == "rejected", [(r["stage"], r["reason"]) for r in records]
        assert "worse live than on the holdout" in records[-1]["reason"]
        assert records[-1]["metrics"]["shadow_labelled"] == 400 and records[-1]["metrics"]["live_pr_auc"] < 0.7
        conn = await asyncpg.connect(postgres.dsn)
        try:
            registry = Registry(conn)
            assert await registry.alias(served, CHAMPION) == "1" and await registry.alias(served, CHALLENGER) is None
            assert (await registry.get(served, "2")).status == REJECTED
        finally:
            await conn.close()
    finally:
        await app.stop()


async def log_shadow(dsn: str, model: str, version: str, n: int) -> None:
    """n labelled shadow predictions of `version` made now, half of them frauds, scored at random."""
    now = int(time.time() * 1000)
    rng = random.Random(7)
    ids = [f"shadow-{uuid.uuid4().hex}" for _ in range(n)]
    predictions = [
        {
            "prediction_id": f"{model}-{version}-{event}",
            "event_id": event,
            "entity_id": "card-1",
            "event_time": now,
            "model_name": model,
            "model_version": version,
            "score": rng.random(),
            "threshold": 0.5,
            "decision": False,
            "feature_set_version": "ci",
            "features": {},
            "feature_values": None,
            "features_age_ms": 0,
            "degraded": False,
            "flags": [],
            "latency_us": 100,
            "source": "shadow",
            "predicted_at": now,
        }
        for event in ids
    ]
    labels = [
        {"event_id": e, "entity_id": "card-1", "label": i % 2, "label_time": now, "source": "ci"}
        for i, e in enumerate(ids)
    ]
    store = PostgresStore(dsn, 10)
    await store.start()
    try:
        await store.write(prepare([SimpleNamespace()] * n, predictions, "predictions"))
        await store.write(prepare([SimpleNamespace()] * n, labels, "labels"))
    finally:
        await store.stop()


async def check_registry(dsn: str, model: str, run_id: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        registry = Registry(conn)
        assert await registry.alias(model, CHAMPION) == "2"
        assert await registry.alias(model, CHALLENGER) is None  # dropped by the promotion
        steps = [e.action for e in await registry.history(model) if e.reason.startswith(f"[{run_id}]")]
        # the job audits `evaluated` with the gate's reasons; the promotion drops the challenger alias "promoted"
        assert steps == ["retrain_started", "registered", "alias_set", "loaded", "shadow_started", "promoted"], steps
    finally:
        await conn.close()


async def test_a_challenger_the_gate_refuses_is_rejected_and_the_champion_stays(
    topics, postgres, tmp_path, wave, prediction_log, served
):
    await prediction_log(postgres.dsn, served, *wave)
    s = settings(topics, postgres, tmp_path, job_env={"KESTREL_RETRAIN_MARGIN": "0.5"})
    app = SERVICE.app(s)
    await app.start()
    try:
        await until(app.runtime.ready, 60)
        await cli.trigger(s, Namespace(model=served, reason="ci asks"))
        records = await lifecycle(topics, served, until_stage={"promoted", "rejected", "failed"})
        assert [r["stage"] for r in records] == GATE_REJECTED, [(r["stage"], r["reason"]) for r in records]
        assert "pr_auc" in records[2]["reason"] and "fails" in records[2]["reason"]
        conn = await asyncpg.connect(postgres.dsn)
        try:
            registry = Registry(conn)
            assert await registry.alias(served, CHAMPION) == "1"
            assert (await registry.get(served, "2")).status == REJECTED
        finally:
            await conn.close()
    finally:
        await app.stop()


async def test_alerts_the_policy_refuses_start_nothing(topics, postgres, tmp_path, served):
    s = settings(topics, postgres, tmp_path)  # min_new_labels 2000; this model has no labelled predictions
    app = SERVICE.app(s)
    await app.start()
    try:
        await until(app.runtime.ready, 60)
        refused = decisions(served, "refused")
        await send_alert(topics, alert(served, "FeatureDrift"))
        await until(lambda: decisions(served, "refused") == refused + 1, 30)
        await send_alert(topics, alert(served, "DeadLettersRising"))  # refused: not a retraining alert
        await send_alert(topics, alert(served, "ScoreDrift", status="resolved"))
        await send_alert(topics, alert(served, "FeatureDrift", severity="critical"))
        await until(lambda: decisions(served, "refused") == refused + 4, 30)
        await asyncio.sleep(1.0)
        assert decisions(served, "started") == 0
        assert await lifecycle(topics, served, count=0) == []
        assert cli.status(s, served) == f"{served}: no runs yet"
    finally:
        await app.stop()


def decisions(model: str, decision: str) -> float:
    labels = {"model": model, "decision": decision}
    return REGISTRY.get_sample_value("kestrel_retrain_decisions_total", labels) or 0.0


def alert(model: str, name: str, *, status: str = "firing", severity: str = "warning") -> dict[str, Any]:
    now = int(time.time() * 1000)
    return {
        "alert_id": uuid.uuid4().hex,
        "fingerprint": uuid.uuid4().hex[:16],
        "name": name,
        "severity": severity,
        "status": status,
        "labels": {"alertname": name, "model": model, "severity": severity},
        "annotations": {},
        "starts_at": now,
        "ends_at": None if status == "firing" else now,
        "source": "ci",
    }


async def send_alert(topics: PrefixedTopics, value: dict[str, Any]) -> None:
    producer = Producer({"bootstrap.servers": topics.bootstrap})
    await producer.start()
    try:
        topic = topics.name("kestrel.alerts.v1")
        await producer.send_many([OutRecord(topic, ALERTS.serialize(value), value["fingerprint"].encode())])
    finally:
        await producer.stop()


async def lifecycle(
    topics: PrefixedTopics, model: str, *, until_stage: set[str] | None = None, count: int | None = None
) -> list[dict[str, Any]]:
    """The model's lifecycle records from the start: up to the first of `until_stage`, or all after 2 s quiet."""
    reader = AIOKafkaConsumer(
        topics.name("kestrel.model-lifecycle.v1"), bootstrap_servers=topics.bootstrap, auto_offset_reset="earliest"
    )
    await reader.start()
    out: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(300):
            quiet_since = time.monotonic()
            while True:
                batches = (await reader.getmany(timeout_ms=200)).values()
                found = [r for b in batches for r in (LIFECYCLE.deserialize(m.value) for m in b)]
                out += [r for r in found if r["model_name"] == model]
                quiet_since = time.monotonic() if found else quiet_since
                if until_stage and out and out[-1]["stage"] in until_stage:
                    return out
                if count is not None and len(out) >= count and time.monotonic() - quiet_since > 2.0:
                    return out
    finally:
        await reader.stop()


async def version_ready(triton: TritonServer, model: str, version: int) -> bool:
    status, _ = await triton._call("GET", f"/v2/models/{model}/versions/{version}/ready", timeout=5.0)
    return status == 200


async def until(check: Any, timeout_s: float) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():
            await asyncio.sleep(0.1)
