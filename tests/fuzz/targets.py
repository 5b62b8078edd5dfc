"""Every consumer of a topic, as a fuzz target: its service started in-process, its valid record and its effect."""

from __future__ import annotations

import tempfile
import uuid
from typing import Any

import asyncpg

from kestrel.common.registry import FileSchemaRegistry
from kestrel.common.runtime.runner import ServiceApp
from kestrel.common.serde import serde_for_topic
from kestrel.common.validation import Limits, validate_event
from kestrel.devstack.paths import model_repository
from kestrel.devstack.topics import PrefixedTopics
from kestrel.featureset import load_feature_set

from .feed import TopicTarget
from .servers import MODEL, inference_settings
from .strategies import NOW_MS, valid_event

CARD = load_feature_set("card")
QUICK = dict(metrics_port=0, health_port=0, session_timeout_ms=6000)
LOOP = dict(changelog_replication=1, commit_interval_s=0.2, poll_timeout_ms=50, heartbeat_interval_ms=500)


def valid_vector(salt: int) -> dict[str, Any]:
    return {
        "entity_id": f"card-fuzz-{salt}",
        "event_id": f"e-fuzz-valid-{salt}",
        "event_time": NOW_MS - 60_000,
        "feature_set_version": CARD.version_id,
        "features": {},
        "feature_values": [0.5] * len(CARD.names),
        "computed_at": NOW_MS - 59_000,
        "categories": {},
        "category_window_ms": 0,
        "numbers": {},
        "log_retention_ms": 0,
        "log_cap": 0,
    }


def valid_prediction(salt: int) -> dict[str, Any]:
    return {
        "prediction_id": f"p-fuzz-{uuid.uuid4().hex}",
        "event_id": f"e-fuzz-valid-{salt}",
        "entity_id": f"card-fuzz-{salt}",
        "event_time": NOW_MS - 60_000,
        "model_name": MODEL,
        "model_version": "1",
        "score": 0.25,
        "threshold": 0.5,
        "decision": False,
        "feature_set_version": CARD.version_id,
        "features": {},
        "feature_values": [0.5] * len(CARD.names),
        "features_age_ms": 10,
        "degraded": False,
        "flags": [],
        "latency_us": 900,
        "source": "api",
        "predicted_at": NOW_MS - 59_000,
    }


def valid_label(salt: int) -> dict[str, Any]:
    return {
        "event_id": f"e-fuzz-valid-{salt}",
        "entity_id": f"card-fuzz-{salt}",
        "label": 1,
        "label_time": NOW_MS - 1000,
        "source": "fuzz",
    }


def valid_report(salt: int) -> dict[str, Any]:
    metric = {"ks_statistic": 0.1, "ks_pvalue": 0.5, "psi": 0.01}
    return {
        "report_id": f"r-fuzz-{salt}-{uuid.uuid4().hex}",
        "subject": "predictions",
        "feature_set_version": CARD.version_id,
        "model_version": "1",
        "model_name": MODEL,
        "window_start": NOW_MS - 3_600_000,
        "window_end": NOW_MS,
        "reference_size": 1000,
        "window_size": 1000,
        "metrics": [dict(metric, name=name, drifted=False) for name in CARD.names[:3]],
        "drifted": False,
        "created_at": NOW_MS,
        "status": "ok",
        "drifted_features": [],
    }


def valid_alert(salt: int) -> dict[str, Any]:
    return {
        "alert_id": f"a-fuzz-{salt}-{uuid.uuid4().hex}",
        "fingerprint": f"{salt:016x}",
        "name": "FuzzCheck",
        "severity": "info",
        "status": "firing",
        "labels": {"alertname": "FuzzCheck", "model": MODEL},
        "annotations": {},
        "starts_at": NOW_MS - 60_000,
        "ends_at": None,
        "source": "fuzz",
    }


def invalid_event(record: dict[str, Any]) -> bool:
    """An event ingest would refuse: every consumer of raw events must dead-letter it, not count it."""
    return bool(validate_event(record, NOW_MS, Limits(max_future_skew_ms=300_000)))


def unwindowable(record: dict[str, Any]) -> bool:
    """A record the drift monitor cannot window: one such would close every open window, or none could date it."""
    from kestrel.drift_monitor.windows import unwindowable as why

    return why(record["event_time"], NOW_MS) is not None


async def found_in_topic(topics: PrefixedTopics, topic: str, schema: str, event_id: str) -> bool:
    serde = serde_for_topic(FileSchemaRegistry(), topics.name(topic), schema)
    try:
        records = await topics.read(topics.name(topic), 1, timeout_s=30)
    except TimeoutError:
        return False
    return any(serde.deserialize(r.value)["event_id"] == event_id for r in records)


def targets(kafka: Any, redis_url: str, dsn: str, triton_url: str) -> list[TopicTarget]:
    """Each (topic, consuming service) pair; kafka and the others are the devstack fixtures' endpoints."""

    async def features(topics: PrefixedTopics) -> ServiceApp:
        from kestrel.features.service import SERVICE
        from kestrel.features.settings import FeaturesSettings

        await topics.apply("kestrel.events.v1", "kestrel.features.v1", "kestrel.dlq.features.v1")
        settings = FeaturesSettings(
            kafka_bootstrap=kafka.bootstrap, topic_prefix=topics.prefix, group_id=f"g-{topics.prefix}", **QUICK, **LOOP
        )
        return await _started(SERVICE.app(settings))

    async def drift(topics: PrefixedTopics) -> ServiceApp:
        from kestrel.drift_monitor.service import SERVICE
        from kestrel.drift_monitor.settings import DriftMonitorSettings

        await topics.apply(
            "kestrel.events.v1", "kestrel.predictions.v1", "kestrel.drift-reports.v1", "kestrel.dlq.drift-monitor.v1"
        )
        settings = DriftMonitorSettings(
            kafka_bootstrap=kafka.bootstrap,
            topic_prefix=topics.prefix,
            postgres_dsn=dsn,
            model_repository=model_repository(),
            group_id=f"g-{topics.prefix}",
            events_group_id=f"ge-{topics.prefix}",
            logger_group_id=f"gl-{topics.prefix}",
            logger_wait_s=1,
            **QUICK,
            **LOOP,
        )
        return await _started(SERVICE.app(settings))

    async def writer(topics: PrefixedTopics) -> ServiceApp:
        from kestrel.feature_writer.service import SERVICE
        from kestrel.feature_writer.settings import FeatureWriterSettings

        await topics.apply("kestrel.features.v1", "kestrel.dlq.feature-writer.v1")
        settings = FeatureWriterSettings(
            kafka_bootstrap=kafka.bootstrap,
            topic_prefix=topics.prefix,
            redis_url=redis_url,
            key_prefix=topics.key_prefix,
            group_id=f"g-{topics.prefix}",
            **QUICK,
        )
        return await _started(SERVICE.app(settings))

    async def scorer(topics: PrefixedTopics) -> ServiceApp:
        from kestrel.inference.service import SCORER

        await topics.apply(
            "kestrel.features.v1", "kestrel.predictions.v1", "kestrel.model-lifecycle.v1", "kestrel.dlq.inference.v1"
        )
        settings = inference_settings(topics, redis_url, triton_url, group_id=f"g-{topics.prefix}")
        return await _started(SCORER.app(settings))

    async def logger(topics: PrefixedTopics) -> ServiceApp:
        from kestrel.prediction_logger.service import SERVICE
        from kestrel.prediction_logger.settings import PredictionLoggerSettings

        await topics.apply("kestrel.predictions.v1", "kestrel.labels.v1", "kestrel.dlq.prediction-logger.v1")
        settings = PredictionLoggerSettings(
            kafka_bootstrap=kafka.bootstrap,
            topic_prefix=topics.prefix,
            postgres_dsn=dsn,
            group_id=f"g-{topics.prefix}",
            **QUICK,
        )
        return await _started(SERVICE.app(settings))

    async def alerting(topics: PrefixedTopics) -> ServiceApp:
        from kestrel.alerting.service import SERVICE
        from kestrel.alerting.settings import AlertingSettings

        await topics.apply("kestrel.drift-reports.v1", "kestrel.alerts.v1", "kestrel.dlq.alerting.v1")
        settings = AlertingSettings(
            kafka_bootstrap=kafka.bootstrap,
            topic_prefix=topics.prefix,
            tick_interval_s=0.2,
            signals_interval_s=3600,
            commit_interval_s=0.5,
            data_dir=tempfile.mkdtemp(prefix="kestrel-fuzz-alerting-"),
            api_port=0,
            **QUICK,
        )
        return await _started(SERVICE.app(settings))

    async def retrain(topics: PrefixedTopics) -> ServiceApp:
        from kestrel.retrain_trigger.service import SERVICE
        from kestrel.retrain_trigger.settings import RetrainTriggerSettings

        await topics.apply("kestrel.alerts.v1", "kestrel.model-lifecycle.v1", "kestrel.dlq.retrain-trigger.v1")
        work = tempfile.mkdtemp(prefix="kestrel-fuzz-retrain-")
        settings = RetrainTriggerSettings(
            kafka_bootstrap=kafka.bootstrap,
            topic_prefix=topics.prefix,
            postgres_dsn=dsn,
            triton_http_url="http://127.0.0.1:1",
            model_repository=f"{work}/models",
            artifacts_dir=f"{work}/artifacts",
            job_command="false",  # no fuzzed alert may start a training run
            alerts=["KestrelFuzzNeverSent"],
            tick_interval_s=0.2,
            data_dir=f"{work}/faust",
            **QUICK,
        )
        return await _started(SERVICE.app(settings))

    async def vector_written(topics: PrefixedTopics, record: dict[str, Any]) -> bool:
        from kestrel.online_store import redis_client

        client = redis_client(redis_url)
        try:
            return bool([k async for k in client.scan_iter(match=f"{topics.key_prefix}:*{record['entity_id']}*")])
        finally:
            await client.aclose()

    async def in_table(table: str, record: dict[str, Any]) -> bool:
        conn = await asyncpg.connect(dsn)
        try:
            return bool(await conn.fetchval(f"SELECT count(*) FROM {table} WHERE event_id = $1", record["event_id"]))
        finally:
            await conn.close()

    async def vector_out(topics: PrefixedTopics, record: dict[str, Any]) -> bool:
        return await found_in_topic(topics, "kestrel.features.v1", "feature_vector", record["event_id"])

    async def prediction_out(topics: PrefixedTopics, record: dict[str, Any]) -> bool:
        return await found_in_topic(topics, "kestrel.predictions.v1", "prediction", record["event_id"])

    async def committed(topics: PrefixedTopics, record: dict[str, Any]) -> bool:
        return True  # a window's report needs hours of traffic: the group committing past it, undead-lettered, is it

    def group(prefix: str = "g-") -> Any:
        return lambda topics: f"{prefix}{topics.prefix}"

    def event(salt: int) -> dict[str, Any]:
        return valid_event(salt) | {"event_id": f"e-fuzz-valid-{salt}", "entity_id": f"card-fuzz-{salt}"}

    return [
        TopicTarget(
            "events -> features",
            "kestrel.events.v1",
            "event",
            "features",
            group(),
            features,
            event,
            vector_out,
            must_reject=invalid_event,
        ),
        TopicTarget(
            "events -> drift-monitor",
            "kestrel.events.v1",
            "event",
            "drift-monitor",
            group("ge-"),
            drift,
            event,
            committed,
            must_reject=unwindowable,
        ),
        TopicTarget(
            "features -> feature-writer",
            "kestrel.features.v1",
            "feature_vector",
            "feature-writer",
            group(),
            writer,
            valid_vector,
            vector_written,
        ),
        TopicTarget(
            "features -> inference-scorer",
            "kestrel.features.v1",
            "feature_vector",
            "inference",
            group(),
            scorer,
            valid_vector,
            prediction_out,
        ),
        TopicTarget(
            "predictions -> prediction-logger",
            "kestrel.predictions.v1",
            "prediction",
            "prediction-logger",
            group(),
            logger,
            valid_prediction,
            lambda t, r: in_table("predictions", r),
        ),
        TopicTarget(
            "labels -> prediction-logger",
            "kestrel.labels.v1",
            "label",
            "prediction-logger",
            group(),
            logger,
            valid_label,
            lambda t, r: in_table("labels", r),
            foreign="prediction",
        ),
        TopicTarget(
            "predictions -> drift-monitor",
            "kestrel.predictions.v1",
            "prediction",
            "drift-monitor",
            group(),
            drift,
            valid_prediction,
            committed,
            must_reject=unwindowable,
        ),
        TopicTarget(
            "drift-reports -> alerting",
            "kestrel.drift-reports.v1",
            "drift_report",
            "alerting",
            lambda topics: f"{topics.prefix}kestrel-alerting",
            alerting,
            valid_report,
            committed,
        ),
        TopicTarget(
            "alerts -> retrain-trigger",
            "kestrel.alerts.v1",
            "alert",
            "retrain-trigger",
            lambda topics: f"{topics.prefix}kestrel-retrain-trigger",
            retrain,
            valid_alert,
            committed,
        ),
    ]


async def _started(app: ServiceApp) -> ServiceApp:
    await app.start()
    return app
