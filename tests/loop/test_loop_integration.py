"""The loop, end to end, on real servers with every service of it as its own process: simulator traffic is
scored by the champion; a new-country wave makes its measured PR-AUC drop; the drift monitor reports it,
alerting raises PerformanceDegraded, the retrain-trigger trains, gates, loads, shadows and promotes a
challenger, and the stream scorer moves to it, all by themselves. A stationary control on the same stack
raises no alert and starts no retraining. Payments run on the simulator's clock at the cards' natural rate
(as the champion was trained), 750 times faster than the wall; the services' own settings shrink the rest
(4-hour windows of event time, small label counts, a 20 s shadow window), with no test-only code path."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiokafka import AIOKafkaConsumer

from kestrel.common.avro import AvroSerde, load_schema
from kestrel.common.registry import FileSchemaRegistry
from kestrel.common.topics import load_catalogue
from kestrel.devstack.loop import (
    RATE,
    STATIONARY_S,
    WINDOW_S,
    champion_copy,
    champion_performance,
    loop_settings,
    register_champion,
    triton_repository,
    write_rules,
)
from kestrel.devstack.loop import traffic as loop_traffic
from kestrel.devstack.ports import free_port
from kestrel.devstack.services import SERVICES, Service, by_name, stack_env
from kestrel.devstack.supervisor import Supervisor
from kestrel.devstack.topics import PrefixedTopics
from kestrel.devstack.triton import TritonServer
from kestrel.simulator.settings import SimulatorSettings

pytestmark = pytest.mark.integration

ALERTING = Service("alerting", "kestrel-alerting", "kestrel.alerting.settings:AlertingSettings", "health_port")
IN_THE_LOOP = ("features", "inference-scorer", "prediction-logger", "drift-monitor", "retrain-trigger")
DRIFT_BUDGET_S = 200
"""Longest wait, from drift onset, for the promoted challenger to serve."""
WINDOW_WALL_S = WINDOW_S * 0.4 / RATE
"""About how long a window takes to fill, in wall seconds (10,000 cards pay about 0.4 times a second)."""
AFTER_S = 2 * WINDOW_WALL_S + 5
"""Traffic kept up after the promotion, for the new version's first windows."""
SERDES = {
    "kestrel.drift-reports.v1": AvroSerde(FileSchemaRegistry(), "reports-value", load_schema("drift_report")),
    "kestrel.alerts.v1": AvroSerde(FileSchemaRegistry(), "alerts-value", load_schema("alert")),
    "kestrel.model-lifecycle.v1": AvroSerde(FileSchemaRegistry(), "lifecycle-value", load_schema("model_lifecycle")),
    "kestrel.predictions.v1": AvroSerde(FileSchemaRegistry(), "predictions-value", load_schema("prediction")),
}


@dataclass
class Loop:
    """One test's loop: its model name, topics, and the record read from each watched topic (ms, topic, value)."""

    model: str
    topics: PrefixedTopics
    env: dict[str, str]
    seen: list[tuple[int, str, dict[str, Any]]]

    def stages(self) -> list[str]:
        lifecycle = "kestrel.model-lifecycle.v1"
        return [v["stage"] for _, t, v in self.seen if t == lifecycle and v["model_name"] == self.model]

    def first(self, topic: str, check: Any) -> int | None:
        return next((ms for ms, t, v in self.seen if t == topic and check(v)), None)

    def reports(self) -> list[dict[str, Any]]:
        return [v for _, t, v in self.seen if t == "kestrel.drift-reports.v1"]


@pytest.fixture
async def loop(kafka, redis_server, postgres, tmp_path) -> AsyncIterator[Loop]:
    model = f"fraud_{uuid.uuid4().hex[:8]}"
    performance = await asyncio.to_thread(champion_performance)
    repo = triton_repository(tmp_path / "models", model, performance)
    await register_champion(postgres.dsn, champion_copy(tmp_path / "artifacts", model, performance))
    triton = TritonServer(tmp_path / "triton", repo, load_models=[model])
    triton.die_with_parent = True
    topics = PrefixedTopics(kafka.bootstrap)
    await asyncio.gather(triton.start(), topics.apply(*load_catalogue().names))
    env = loop_env(tmp_path, model, topics, repo, postgres.dsn, redis_server.url, triton)
    services = [by_name(name) for name in IN_THE_LOOP] + [ALERTING]
    supervisor = Supervisor(tmp_path / "stack", env, services)
    for replica in supervisor.replicas:  # free ports, not the settings' defaults another stack may hold
        replica.ports = {name: free_port() for name in replica.ports}
    await supervisor.start()
    supervising = asyncio.create_task(supervisor.supervise())  # restarts a crash while we wait, as the stack does
    found = Loop(model, topics, env, [])
    watcher = asyncio.create_task(watch(found))
    try:
        await supervisor.wait_ready(240)
        yield found
    finally:
        watcher.cancel()
        supervising.cancel()
        await supervisor.stop()
        await triton.stop()


def loop_env(tmp: Path, model: str, topics: PrefixedTopics, repo: Path, dsn: str, redis: str, triton: Any) -> dict:
    """What the services read: the stack's addresses, this test's topics and groups, and the loop's timings."""
    tag = model
    write_rules(tmp)
    addresses = {
        "kafka_bootstrap": topics.bootstrap,
        "redis_url": redis,
        "postgres_dsn": dsn,
        "schema_registry_store": str(tmp / "schema-registry.json"),
        "triton_url": triton.grpc_url,
        "triton_http_url": triton.http_url,
    }
    return (
        stack_env(addresses, SERVICES)
        | loop_settings(tmp)
        | {
            "KESTREL_TOPIC_PREFIX": topics.prefix,
            "KESTREL_MODEL_REPOSITORY": str(repo),
            "KESTREL_LOG_FORMAT": "json",
            "KESTREL_FEATURES_GROUP_ID": f"features-{tag}",
            "KESTREL_INFERENCE_GROUP_ID": f"scorer-{tag}",
            "KESTREL_INFERENCE_MODEL_NAME": model,
            "KESTREL_PREDICTION_LOGGER_GROUP_ID": f"logger-{tag}",
            "KESTREL_DRIFT_MONITOR_LOGGER_GROUP_ID": f"logger-{tag}",
            "KESTREL_DRIFT_MONITOR_GROUP_ID": f"drift-{tag}",
            "KESTREL_ALERTING_APP_ID": f"alerting-{tag}",
            "KESTREL_RETRAIN_TRIGGER_APP_ID": f"retrain-{tag}",
        }
    )


async def watch(loop: Loop) -> None:
    """Reads the reports, alerts, lifecycle records and (the version that scored) predictions as they come."""
    names = {loop.topics.name(t): t for t in SERDES}
    reader = AIOKafkaConsumer(*names, bootstrap_servers=loop.topics.bootstrap, auto_offset_reset="earliest")
    await reader.start()
    versions: set[str] = set()
    try:
        while True:
            for tp, batch in (await reader.getmany(timeout_ms=200)).items():
                topic = names[tp.topic]
                for record in batch:
                    value = SERDES[topic].deserialize(record.value)
                    if topic == "kestrel.predictions.v1":
                        if (value["source"], value["model_version"]) in versions:
                            continue  # only the first prediction of each version and source is kept
                        versions.add((value["source"], value["model_version"]))
                    loop.seen.append((record.timestamp, topic, value))
    finally:
        await reader.stop()


async def traffic(loop: Loop, seconds: float, scenario: str) -> Any:
    settings = SimulatorSettings(
        kafka_bootstrap=loop.topics.bootstrap,
        topic_prefix=loop.topics.prefix,
        schema_registry_store=loop.env["KESTREL_SCHEMA_REGISTRY_STORE"],
    )
    return await loop_traffic(settings, seconds, scenario, progress="log")


async def test_stationary_traffic_raises_no_alert_and_starts_no_retraining(loop):
    await traffic(loop, STATIONARY_S + 100, "none")
    await asyncio.sleep(2 * WINDOW_WALL_S)
    timeline = print_timeline(loop, None, None)
    assert len([r for r in loop.reports() if r["model_version"] == "1"]) >= 6
    assert "alert" not in timeline and "retrain_started" not in loop.stages()


# its own budget: start-up (~60 s), STATIONARY_S + DRIFT_BUDGET_S + AFTER_S of traffic, teardown
@pytest.mark.timeout(60 + STATIONARY_S + DRIFT_BUDGET_S + AFTER_S + 60)
async def test_drift_is_detected_retrained_gated_shadowed_and_promoted_by_itself(loop):
    started = time.time()
    sending = asyncio.create_task(traffic(loop, STATIONARY_S + DRIFT_BUDGET_S + AFTER_S, "new-country-wave"))
    onset_ms = int((started + STATIONARY_S) * 1000)
    deadline = started + STATIONARY_S + DRIFT_BUDGET_S
    serving = None
    while time.time() < deadline and serving is None and not ({"rejected", "failed"} & set(loop.stages())):
        await asyncio.sleep(1)
        serving = loop.first("kestrel.predictions.v1", lambda v: v["source"] == "stream" and v["model_version"] == "2")
    if serving is not None:
        await asyncio.sleep(AFTER_S)
    sending.cancel()
    timeline = print_timeline(loop, onset_ms, serving)
    assert "drift" in timeline and "alert" in timeline, timeline
    assert loop.stages()[:1] == ["retrain_started"], loop.stages()
    assert loop.stages()[-1:] == ["promoted"], lifecycle_reasons(loop)
    assert serving is not None
    assert onset_ms <= timeline["drift"] <= timeline["alert"] <= timeline["promoted"] <= serving
    before, after = pr_aucs(loop, "1", degraded), pr_aucs(loop, "2", lambda r: True)
    assert after and np.mean(after) > np.mean(before) + 0.15, (before, after)  # quality restored on the wave


def lifecycle_reasons(loop: Loop) -> list[str]:
    """Each lifecycle step of the loop's model with its reason (a gate's or a shadow's numbers)."""
    lifecycle = "kestrel.model-lifecycle.v1"
    return [f"{v['stage']}: {v['reason']}" for _, t, v in loop.seen if t == lifecycle and v["model_name"] == loop.model]


def pr_aucs(loop: Loop, version: str, which: Any) -> list[float]:
    """Measured PR-AUC of the version's reports that `which` picks."""
    picked = [r for r in loop.reports() if r["model_version"] == version and which(r)]
    found = [(r.get("performance") or {}).get("pr_auc") for r in picked]
    return [x for x in found if x is not None]


def print_timeline(loop: Loop, onset_ms: int | None, serving_ms: int | None) -> dict[str, int]:
    """Prints every report, alert and lifecycle record; returns when each link of the loop first happened."""
    zero = onset_ms or (loop.seen[0][0] if loop.seen else 0)
    print(f"\nThe loop of {loop.model} (seconds from {'drift onset' if onset_ms else 'the first record'})")
    for ms, topic, value in loop.seen:
        print(f"  {(ms - zero) / 1000:+8.1f}  {describe_record(topic, value)}")
    marks = {
        "drift": loop.first("kestrel.drift-reports.v1", degraded),
        "alert": loop.first("kestrel.alerts.v1", lambda v: v["status"] == "firing"),
    }
    for stage in ("retrain_started", "evaluated", "shadow_started", "promoted"):
        marks[stage] = loop.first("kestrel.model-lifecycle.v1", lambda v, s=stage: v["stage"] == s)
    timeline = {k: v for k, v in marks.items() if v is not None}
    if onset_ms is not None and serving_ms is not None:
        print(f"  drift onset -> the new model serving: {(serving_ms - onset_ms) / 1000:.1f} s")
    return timeline


def describe_record(topic: str, v: dict[str, Any]) -> str:
    if topic == "kestrel.drift-reports.v1":
        perf = v.get("performance") or {}
        return (
            f"report   v{v['model_version']} {v['status']:<17} rows {v['window_size']:>5} "
            f"score drifted {score_drifted(v)} "
            f"drifted {len(v['drifted_features'])} pr_auc {perf.get('pr_auc')} band_low {perf.get('band_low')} "
            f"degraded {perf.get('degraded')}"
        )
    if topic == "kestrel.alerts.v1":
        return f"alert    {v['name']} {v['status']} {v['severity']}"
    if topic == "kestrel.model-lifecycle.v1":
        return f"model    {v['stage']:<15} v{v['version']} {v['reason'][:100]}"
    return f"predict  first {v['source']} prediction of v{v['model_version']}"


def degraded(report: dict[str, Any]) -> bool:
    """What the test's PerformanceDegraded rule fires on."""
    perf = report.get("performance") or {}
    return bool(perf.get("degraded")) and perf.get("pr_auc") is not None and perf["pr_auc"] < 0.5


def score_drifted(report: dict[str, Any]) -> bool | None:
    return next((m["drifted"] for m in report["metrics"] if m["kind"] == "score"), None)
