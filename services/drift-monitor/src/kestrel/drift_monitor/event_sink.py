"""The events subject's report sink: each close of event windows judged against the newest events reference, the
DriftReport upserted in PostgreSQL and published on kestrel.drift-reports.v1 before the loop may commit the close."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from prometheus_client import Counter

from kestrel.common.kafka import OutRecord, Producer
from kestrel.drift_monitor.assess import DriftPolicy
from kestrel.drift_monitor.event_verdict import judge_events
from kestrel.drift_monitor.event_windows import EventClose
from kestrel.drift_monitor.record import events_report
from kestrel.drift_monitor.references import EventReferences
from kestrel.drift_monitor.reports_db import ReportsDatabase
from kestrel.drift_monitor.sink import CloseAck

log = structlog.get_logger()

EVENT_WINDOWS = Counter(
    "kestrel_drift_monitor_event_windows_closed_total", "Event windows reported (subject events), by status", ["status"]
)


class EventReportSink:
    """Takes the events loop's close outputs in place of a producer, like the predictions' ReportSink: a failed
    report fails the ack, the loop rewinds and closes the window again under the same report_id."""

    def __init__(
        self,
        references: EventReferences,
        database: ReportsDatabase,
        publish: Callable[[dict[str, Any]], OutRecord],
        producer: Producer,
        policy: DriftPolicy,
        model_name: str,
    ) -> None:
        self._references, self._db, self._publish, self._producer = references, database, publish, producer
        self._policy, self._model_name = policy, model_name

    async def produce_batch(self, records: Sequence[OutRecord]) -> CloseAck:
        closes = [EventClose.from_json(r.value) for r in records]
        return CloseAck(asyncio.create_task(self._all(closes), name="event-drift-reports"))

    async def _all(self, closes: Sequence[EventClose]) -> None:
        for close in closes:
            await self.report(close)

    async def report(self, close: EventClose) -> dict[str, Any]:
        version, reference = await self._references.newest()
        if reference is None:
            log.warning("events_reference_missing", model=self._model_name)
        verdict = await asyncio.to_thread(judge_events, reference, close.counts, self._policy) if reference else None
        report = events_report(close.close, verdict, self._model_name, version, int(time.time() * 1000))
        await self._db.upsert(report)
        await self._producer.send(self._publish(report))
        EVENT_WINDOWS.labels(report["status"]).inc()
        log.info(
            "event_window_reported",
            report_id=report["report_id"],
            model=self._model_name,
            version=version,
            window_start=report["window_start"],
            status=report["status"],
            rows=report["window_size"],
            late=report["late_predictions"],
            drifted=report["drifted_features"],
        )
        return report
