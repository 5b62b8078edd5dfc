"""The drift monitor's wiring: predictions in (event time only), window closes to the report sink, reports out."""

from __future__ import annotations

from typing import Any, cast

from kestrel.common.kafka import Producer, aiokafka_config
from kestrel.common.runtime.app import Runtime
from kestrel.common.runtime.consumer import producer
from kestrel.common.runtime.stateful import stateful_loop
from kestrel.common.stateful import LoopOptions
from kestrel.drift_monitor.assess import DriftPolicy
from kestrel.drift_monitor.processor import WindowProcessor, state_store
from kestrel.drift_monitor.progress import LoggerProgress
from kestrel.drift_monitor.references import References
from kestrel.drift_monitor.reports_db import ReportsDatabase
from kestrel.drift_monitor.settings import DriftMonitorSettings
from kestrel.drift_monitor.sink import ReportSink, publisher
from kestrel.drift_monitor.windows import Windows


def components(rt: Runtime[DriftMonitorSettings]) -> list[Any]:
    """Producer, logger progress, PostgreSQL, changelog, then the stateful loop (intake last: it stops first)."""
    s = rt.settings
    assert rt.topics is not None
    predictions, reports = rt.topics.bind(s.predictions_topic), rt.topics.bind(s.reports_topic)
    out = producer(rt, reports)
    progress = LoggerProgress(aiokafka_config(s), s.logger_group_id, predictions.name)
    database = ReportsDatabase(s.postgres_dsn.get_secret_value(), s.postgres_timeout_s)
    sink = ReportSink(
        progress,
        References(s.model_repository, s.feature_set),
        database,
        publisher(rt.topics.serde(reports).serialize, reports.name),
        out,
        DriftPolicy(alpha=s.alpha, correction=s.correction),
        s.logger_wait_s,
    )
    store = state_store()
    processor = WindowProcessor(
        Windows(s.window_s * 1000, s.allowed_lateness_s * 1000, s.idle_partition_s * 1000, s.window_predictions),
        store,
        rt.topics.serde(predictions).deserialize,
    )
    options = LoopOptions(
        batch_max=s.batch_max,
        poll_timeout_ms=s.poll_timeout_ms,
        commit_interval_s=s.commit_interval_s,
        retry_max_s=s.retry_max_s,
    )
    loop = stateful_loop(
        rt,
        predictions,
        s.group_id,
        processor,
        store,
        out,
        options,
        s.changelog_replication,
        cast(Producer, sink),  # the loop only calls produce_batch and waits on its acks
        session_timeout_ms=s.session_timeout_ms,
        heartbeat_interval_ms=s.heartbeat_interval_ms,
        max_poll_interval_ms=s.max_poll_interval_ms,
    )
    return [out, progress, database, *loop]
