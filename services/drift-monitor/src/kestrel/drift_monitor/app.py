"""The drift monitor's wiring: predictions and events in, window closes to their report sinks, reports out."""

from __future__ import annotations

from typing import Any, cast

from kestrel.common.kafka import Producer, aiokafka_config
from kestrel.common.runtime.app import Runtime
from kestrel.common.runtime.bindings import TopicBinding
from kestrel.common.runtime.consumer import producer
from kestrel.common.runtime.stateful import stateful_loop
from kestrel.common.stateful import LoopOptions, StatefulProcessor, StateStore
from kestrel.drift_monitor.assess import DriftPolicy
from kestrel.drift_monitor.event_sink import EventReportSink
from kestrel.drift_monitor.event_windows import EventWindowProcessor, event_store
from kestrel.drift_monitor.processor import WindowProcessor, state_store
from kestrel.drift_monitor.progress import LoggerProgress
from kestrel.drift_monitor.references import EventReferences, References
from kestrel.drift_monitor.reports_db import ReportsDatabase
from kestrel.drift_monitor.settings import DriftMonitorSettings
from kestrel.drift_monitor.sink import ReportSink, publisher
from kestrel.drift_monitor.windows import Windows


def components(rt: Runtime[DriftMonitorSettings]) -> list[Any]:
    """Producer, logger progress, PostgreSQL, then each subject's changelog and stateful loop (intake last: it stops
    first): the events subject's, then the predictions'."""
    s = rt.settings
    assert rt.topics is not None
    predictions, reports = rt.topics.bind(s.predictions_topic), rt.topics.bind(s.reports_topic)
    events = rt.topics.bind(s.events_topic)
    out = producer(rt, reports)
    progress = LoggerProgress(aiokafka_config(s), s.logger_group_id, predictions.name)
    database = ReportsDatabase(s.postgres_dsn.get_secret_value(), s.postgres_timeout_s)
    publish, policy = publisher(rt.topics.serde(reports).serialize, reports.name), _policy(s)
    sink = ReportSink(
        progress, References(s.model_repository, s.feature_set), database, publish, out, policy, s.logger_wait_s
    )
    event_sink = EventReportSink(
        EventReferences(s.model_repository, s.events_model), database, publish, out, policy, s.events_model
    )
    store, events_store = state_store(), event_store()
    processor = WindowProcessor(_windows(s), store, rt.topics.serde(predictions).deserialize)
    event_processor = EventWindowProcessor(_windows(s), events_store, rt.topics.serde(events).deserialize)
    event_loop = _loop(rt, events, s.events_group_id, event_processor, events_store, out, event_sink)
    loop = _loop(rt, predictions, s.group_id, processor, store, out, sink)
    return [out, progress, database, *event_loop, *loop]


def _policy(s: DriftMonitorSettings) -> DriftPolicy:
    return DriftPolicy(alpha=s.alpha, correction=s.correction)


def _windows(s: DriftMonitorSettings) -> Windows:
    return Windows(s.window_s * 1000, s.allowed_lateness_s * 1000, s.idle_partition_s * 1000, s.window_predictions)


def _loop(
    rt: Runtime[DriftMonitorSettings],
    source: TopicBinding,
    group_id: str,
    processor: StatefulProcessor,
    store: StateStore,
    out: Producer,
    sink: ReportSink | EventReportSink,
) -> list[Any]:
    s = rt.settings
    options = LoopOptions(
        batch_max=s.batch_max,
        poll_timeout_ms=s.poll_timeout_ms,
        commit_interval_s=s.commit_interval_s,
        retry_max_s=s.retry_max_s,
    )
    return stateful_loop(
        rt,
        source,
        group_id,
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
