"""The batch handler: split a mixed batch by topic, decode, store it in one transaction, report the rejects."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import structlog
from aiokafka import ConsumerRecord
from prometheus_client import Counter, Gauge, Histogram

from kestrel.common.health import SinkState
from kestrel.common.kafka import Rejection
from kestrel.prediction_logger.rows import PREDICTION_COLUMNS, Rows, prepare
from kestrel.prediction_logger.store import PostgresStore

log = structlog.get_logger()

ROWS = Counter("kestrel_prediction_logger_rows_total", "Records by table and outcome", ["table", "outcome"])
BATCH_SIZE = Histogram(
    "kestrel_prediction_logger_batch_records",
    "Records per consumer batch",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000),
)
BATCH_SECONDS = Histogram(
    "kestrel_prediction_logger_batch_seconds",
    "Decode, COPY and INSERT time of one batch (one transaction)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
EVENT_LAG = Gauge(
    "kestrel_prediction_logger_lag_seconds",
    "Wall clock minus when the newest stored prediction was made (predicted_at): the logger's end-to-end lag",
)
POSTGRES_UP = Gauge("kestrel_prediction_logger_postgres_up", "1 when the last batch committed, else 0")

PREDICTED_AT = PREDICTION_COLUMNS.index("predicted_at")

Decode = Callable[[list[bytes]], list[Any]]


class LogBatchHandler:
    """BatchConsumer handler over both topics. UnavailableError (PostgreSQL down) makes the consumer retry the
    batch with backoff and commit nothing meanwhile; the inserts ignore rows already stored, so a retry, or a
    batch delivered again after a crash, adds nothing twice."""

    def __init__(self, tables: Mapping[str, tuple[str, Decode]], store: PostgresStore) -> None:
        self._tables = tables
        """Topic name -> (table, decoder)."""
        self._store = store
        self.postgres = SinkState("postgres", POSTGRES_UP)
        """Whether the last batch committed (None until the first)."""

    async def __call__(self, records: Sequence[ConsumerRecord]) -> list[Rejection]:
        start = time.perf_counter()
        rows, rejected = self.prepare(records)
        inserted = await self.postgres.write(self._store.write(rows))
        elapsed = time.perf_counter() - start
        BATCH_SIZE.observe(len(records))
        BATCH_SECONDS.observe(elapsed)
        self._count(rows, inserted, rejected)
        log.debug("batch_stored", records=len(records), ms=round(elapsed * 1000, 2), **inserted)
        return rows.rejections

    def prepare(self, records: Sequence[ConsumerRecord]) -> tuple[Rows, dict[str, int]]:
        """The batch's rows by table, and how many records of each table were rejected."""
        rows, rejected = Rows(), {}
        by_topic: dict[str, list[ConsumerRecord]] = {}
        for record in records:
            by_topic.setdefault(record.topic, []).append(record)
        for topic, batch in by_topic.items():
            table, decode = self._tables[topic]
            before = len(rows.rejections)
            prepare(batch, decode([r.value for r in batch]), table, rows)
            rejected[table] = len(rows.rejections) - before
        return rows, rejected

    def _count(self, rows: Rows, inserted: Mapping[str, int], rejected: Mapping[str, int]) -> None:
        for table, count in inserted.items():
            ROWS.labels(table, "inserted").inc(count)
            ROWS.labels(table, "duplicate").inc(len(getattr(rows, table)) - count)
        for table, count in rejected.items():
            ROWS.labels(table, "rejected").inc(count)
        if rows.predictions:
            EVENT_LAG.set(time.time() - max(row[PREDICTED_AT] for row in rows.predictions).timestamp())
