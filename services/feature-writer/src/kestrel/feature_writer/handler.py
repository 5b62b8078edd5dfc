"""The batch handler: decode a consumer batch, write its newest vectors to Redis, report the rejects."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from aiokafka import ConsumerRecord
from prometheus_client import Counter, Gauge, Histogram

from kestrel.common.health import SinkState
from kestrel.common.kafka import Rejection
from kestrel.feature_writer.vectors import prepare
from kestrel.featureset.check import VectorCheck
from kestrel.online_store import OnlineStoreWriter

log = structlog.get_logger()

VECTORS = Counter("kestrel_feature_writer_vectors_total", "Feature vectors by outcome", ["outcome"])
BATCH_SECONDS = Histogram(
    "kestrel_feature_writer_batch_seconds",
    "Decode and Redis write time of one batch",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
REDIS_UP = Gauge("kestrel_feature_writer_redis_up", "1 when the last Redis write succeeded, else 0")
EVENT_LAG = Gauge("kestrel_feature_writer_event_lag_seconds", "Wall clock minus the newest event time written")


class VectorBatchHandler:
    """BatchConsumer handler. Raising UnavailableError (Redis down) makes the consumer retry the batch with
    backoff and commit nothing meanwhile; the writes are idempotent, so a retry is always safe."""

    def __init__(
        self, decode: Callable[[list[bytes]], list[Any]], writer: OnlineStoreWriter, check: VectorCheck, prefix: str
    ) -> None:
        self._decode = decode
        self._writer = writer
        self._check = check
        self._prefix = prefix
        self.redis = SinkState("redis", REDIS_UP)
        """Whether Redis acknowledged the last batch (None until the first)."""

    async def __call__(self, records: Sequence[ConsumerRecord]) -> list[Rejection]:
        start = time.perf_counter()
        writes, rejections = prepare(records, self._decode([r.value for r in records]), self._check, self._prefix)
        result = await self.redis.write(self._writer.write(writes))
        elapsed = time.perf_counter() - start
        BATCH_SECONDS.observe(elapsed)
        outcomes = {
            "written": result.written,
            "older": result.older,
            "superseded": result.superseded,
            "rejected": len(rejections),
        }
        for outcome, count in outcomes.items():
            VECTORS.labels(outcome).inc(count)
        log.debug("batch_written", records=len(records), ms=round(elapsed * 1000, 2), **outcomes)
        if writes:
            EVENT_LAG.set(time.time() - max(w.event_time_ms for w in writes) / 1000)
        return rejections
