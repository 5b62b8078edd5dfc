"""The report sink: where the stateful loop's window closes go. Each close becomes a DriftReport, in PostgreSQL and
on kestrel.drift-reports.v1, before the loop may commit the close (its acks wait for the reports)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import structlog
from prometheus_client import Counter, Histogram

from kestrel.common.errors import UnavailableError
from kestrel.common.kafka import OutRecord, Producer
from kestrel.drift_monitor.assess import Assessment, DriftPolicy, ModelReference, Window, aligned, assess
from kestrel.drift_monitor.progress import LoggerProgress
from kestrel.drift_monitor.record import drift_report
from kestrel.drift_monitor.references import MissingReference, References
from kestrel.drift_monitor.reports_db import ReportsDatabase
from kestrel.drift_monitor.windows import Close

log = structlog.get_logger()

WINDOWS = Counter(
    "kestrel_drift_monitor_windows_closed_total",
    "Windows reported, by status and whether the log was complete",
    ["status", "log_complete"],
)
CLOSE_SECONDS = Histogram(
    "kestrel_drift_monitor_close_seconds",
    "From the close decision to the report published: logger wait, PostgreSQL read, statistics, write, publish",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
REPORT_DELAY = Histogram(
    "kestrel_drift_monitor_report_delay_seconds",
    "Wall clock when a window's report was published minus the window's end (lateness allowance included)",
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200),
)
LATE_REPORTED = Counter("kestrel_drift_monitor_late_predictions_total", "Late predictions reported with a window")


class CloseAck:
    """What the loop waits for at its commit point: every report of one batch written and published."""

    def __init__(self, task: asyncio.Task[None]) -> None:
        self._task = task

    async def wait(self, timeout_s: float | None = None) -> bool:
        await asyncio.wait({self._task}, timeout=timeout_s)
        return self._task.done()

    def raise_for_failures(self, what: str = "records", unreported: str = "not reported") -> None:
        if not self._task.done():
            raise UnavailableError(f"drift reports {unreported}")
        if self._task.cancelled() or self._task.exception() is not None:
            error = "cancelled" if self._task.cancelled() else repr(self._task.exception())
            raise UnavailableError(f"drift reports not written: {error}")


class ReportSink:
    """Takes the loop's close outputs in place of a producer (produce_batch -> an ack to wait on). A failed report
    fails the ack: the loop then rewinds to its last commit point and closes the window again; the report_id
    is the same, so PostgreSQL keeps one row and the topic's readers see the same id again."""

    def __init__(
        self,
        progress: LoggerProgress,
        references: References,
        database: ReportsDatabase,
        publish: Callable[[dict[str, Any]], OutRecord],
        producer: Producer,
        policy: DriftPolicy,
        logger_wait_s: float,
    ) -> None:
        self._progress, self._references, self._db = progress, references, database
        self._publish, self._producer = publish, producer
        self._policy, self._logger_wait_s = policy, logger_wait_s

    async def produce_batch(self, records: Sequence[OutRecord]) -> CloseAck:
        closes = [Close.from_json(r.value) for r in records]
        return CloseAck(asyncio.create_task(self._all(closes), name="drift-reports"))

    async def _all(self, closes: Sequence[Close]) -> None:
        for close in closes:
            await self.report(close)

    async def report(self, close: Close) -> dict[str, Any]:
        started = time.monotonic()
        complete = await self._progress.wait(close.offsets, self._logger_wait_s)
        assessment, fs_version = await self._assess(close)
        report = drift_report(close, assessment, fs_version, int(time.time() * 1000), complete)
        await self._db.upsert(report)
        await self._producer.send(self._publish(report))
        self._observe(report, started)
        return report

    async def _assess(self, close: Close) -> tuple[Assessment | None, str]:
        try:
            ref = await self._references.get(close.model_name, close.model_version)
        except MissingReference as exc:
            log.warning("reference_missing", model=close.model_name, version=close.model_version, error=str(exc))
            return None, ""
        try:
            window = await self._window(close, ref)
        except ValueError as exc:  # rows of another feature set than the artifact's: retrying cannot help
            log.error("window_unreadable", model=close.model_name, version=close.model_version, error=str(exc))
            return None, ref.feature_set_version
        return await asyncio.to_thread(assess, ref, window, self._policy), ref.feature_set_version

    async def _window(self, close: Close, ref: ModelReference) -> Window:
        key = (close.model_name, close.model_version, close.start, close.end)
        names: Mapping[str, Sequence[str]] = {ref.feature_set_version: ref.features.names}
        rows = await self._db.window(*key, names)
        labelled = await self._db.labelled(*key)
        return Window(
            aligned(rows.names, rows.features, ref.features.names),
            np.asarray(rows.column, dtype=np.float64),
            np.array([p.score for p in labelled], dtype=np.float64),
            np.array([p.label for p in labelled], dtype=np.int64),
            await self._db.threshold(*key),
        )

    def _observe(self, report: Mapping[str, Any], started: float) -> None:
        elapsed = time.monotonic() - started
        WINDOWS.labels(report["status"], str(report["log_complete"]).lower()).inc()
        CLOSE_SECONDS.observe(elapsed)
        REPORT_DELAY.observe(max(time.time() - report["window_end"] / 1000, 0.0))
        LATE_REPORTED.inc(report["late_predictions"])
        log.info(
            "window_reported",
            report_id=report["report_id"],
            model=report["model_name"],
            version=report["model_version"],
            window_start=report["window_start"],
            status=report["status"],
            rows=report["window_size"],
            late=report["late_predictions"],
            log_complete=report["log_complete"],
            drifted=report["drifted_features"],
            ms=round(elapsed * 1000, 1),
        )


def publisher(serialize: Callable[[dict[str, Any]], bytes], topic: str) -> Callable[[dict[str, Any]], OutRecord]:
    """A report as its topic record, keyed by subject as infra/topics.yaml declares."""
    return lambda report: OutRecord(topic, serialize(report), str(report["subject"]).encode())
