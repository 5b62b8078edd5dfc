"""Each consuming service started in-process on the devstack's servers, under a topic prefix of its own."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass

from kestrel.common.runtime.runner import ServiceApp
from kestrel.devstack.paths import model_repository
from kestrel.devstack.topics import PrefixedTopics

from .servers import inference_settings

QUICK = dict(metrics_port=0, health_port=0, session_timeout_ms=6000)
LOOP = dict(changelog_replication=1, commit_interval_s=0.2, poll_timeout_ms=50, heartbeat_interval_ms=500)


@dataclass(frozen=True)
class Endpoints:
    """The devstack fixtures' servers."""

    kafka: str
    redis_url: str
    dsn: str
    triton_url: str


async def features(ep: Endpoints, topics: PrefixedTopics) -> ServiceApp:
    from kestrel.features.service import SERVICE
    from kestrel.features.settings import FeaturesSettings

    await topics.apply("kestrel.events.v1", "kestrel.features.v1", "kestrel.dlq.features.v1")
    settings = FeaturesSettings(
        kafka_bootstrap=ep.kafka, topic_prefix=topics.prefix, group_id=f"g-{topics.prefix}", **QUICK, **LOOP
    )
    return await _started(SERVICE.app(settings))


async def drift_monitor(ep: Endpoints, topics: PrefixedTopics) -> ServiceApp:
    from kestrel.drift_monitor.service import SERVICE
    from kestrel.drift_monitor.settings import DriftMonitorSettings

    await topics.apply(
        "kestrel.events.v1", "kestrel.predictions.v1", "kestrel.drift-reports.v1", "kestrel.dlq.drift-monitor.v1"
    )
    settings = DriftMonitorSettings(
        kafka_bootstrap=ep.kafka,
        topic_prefix=topics.prefix,
        postgres_dsn=ep.dsn,
        model_repository=model_repository(),
        group_id=f"g-{topics.prefix}",
        events_group_id=f"ge-{topics.prefix}",
        logger_group_id=f"gl-{topics.prefix}",
        logger_wait_s=1,
        **QUICK,
        **LOOP,
    )
    return await _started(SERVICE.app(settings))


async def feature_writer(ep: Endpoints, topics: PrefixedTopics) -> ServiceApp:
    from kestrel.feature_writer.service import SERVICE
    from kestrel.feature_writer.settings import FeatureWriterSettings

    await topics.apply("kestrel.features.v1", "kestrel.dlq.feature-writer.v1")
    settings = FeatureWriterSettings(
        kafka_bootstrap=ep.kafka,
        topic_prefix=topics.prefix,
        redis_url=ep.redis_url,
        key_prefix=topics.key_prefix,
        group_id=f"g-{topics.prefix}",
        **QUICK,
    )
    return await _started(SERVICE.app(settings))


async def inference_scorer(ep: Endpoints, topics: PrefixedTopics) -> ServiceApp:
    from kestrel.inference.service import SCORER

    await topics.apply(
        "kestrel.features.v1", "kestrel.predictions.v1", "kestrel.model-lifecycle.v1", "kestrel.dlq.inference.v1"
    )
    settings = inference_settings(topics, ep.redis_url, ep.triton_url, group_id=f"g-{topics.prefix}")
    return await _started(SCORER.app(settings))


async def prediction_logger(ep: Endpoints, topics: PrefixedTopics) -> ServiceApp:
    from kestrel.prediction_logger.service import SERVICE
    from kestrel.prediction_logger.settings import PredictionLoggerSettings

    await topics.apply("kestrel.predictions.v1", "kestrel.labels.v1", "kestrel.dlq.prediction-logger.v1")
    settings = PredictionLoggerSettings(
        kafka_bootstrap=ep.kafka,
        topic_prefix=topics.prefix,
        postgres_dsn=ep.dsn,
        group_id=f"g-{topics.prefix}",
        **QUICK,
    )
    return await _started(SERVICE.app(settings))


async def alerting(ep: Endpoints, topics: PrefixedTopics) -> ServiceApp:
    from kestrel.alerting.service import SERVICE
    from kestrel.alerting.settings import AlertingSettings

    await topics.apply("kestrel.drift-reports.v1", "kestrel.alerts.v1", "kestrel.dlq.alerting.v1")
    settings = AlertingSettings(
        kafka_bootstrap=ep.kafka,
        topic_prefix=topics.prefix,
        tick_interval_s=0.2,
        signals_interval_s=3600,
        commit_interval_s=0.5,
        data_dir=tempfile.mkdtemp(prefix="kestrel-fuzz-alerting-"),
        api_port=0,
        **QUICK,
    )
    return await _started(SERVICE.app(settings))


async def retrain_trigger(ep: Endpoints, topics: PrefixedTopics) -> ServiceApp:
    from kestrel.retrain_trigger.service import SERVICE
    from kestrel.retrain_trigger.settings import RetrainTriggerSettings

    await topics.apply("kestrel.alerts.v1", "kestrel.model-lifecycle.v1", "kestrel.dlq.retrain-trigger.v1")
    work = tempfile.mkdtemp(prefix="kestrel-fuzz-retrain-")
    settings = RetrainTriggerSettings(
        kafka_bootstrap=ep.kafka,
        topic_prefix=topics.prefix,
        postgres_dsn=ep.dsn,
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


async def _started(app: ServiceApp) -> ServiceApp:
    await app.start()
    return app
