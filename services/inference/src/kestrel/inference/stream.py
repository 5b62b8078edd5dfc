"""The stream scorer: every feature vector on kestrel.features.v1 scored through Triton, as source=stream.

BatchConsumer handler. Vectors of the current schema are decoded a batch at a time into columns and one
array of values, and predictions encoded straight from them (kestrel.featureset.wire: bytes identical to
fastavro's); anything else (older writers' features maps included) goes through the generic serde. A
consumer batch (thousands of vectors) goes to Triton as requests of up to the model's max_batch_size rows,
several in flight; the prediction records are produced and acknowledged before the batch's offsets are
committed. Triton or Kafka down: UnavailableError, so the consumer retries the batch with backoff and
commits nothing. Prediction ids are derived from (event, model, version), so a replayed batch produces the
same ids and the prediction log stays free of duplicates."""

from __future__ import annotations

import operator
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import structlog
from prometheus_client import Counter, Gauge, Histogram
from structlog.contextvars import bound_contextvars

from kestrel.common.avro import AvroSerde
from kestrel.common.errors import SerializationError, UnavailableError
from kestrel.common.kafka import OutRecord, Producer, Rejection
from kestrel.common.kafka.context import offset_ranges
from kestrel.featureset import FeatureSet
from kestrel.featureset.check import VectorCheck
from kestrel.featureset.wire import DecodedVectors, VectorDecoder
from kestrel.inference.core import StreamRows, stream_predictions
from kestrel.inference.model import TritonModel
from kestrel.inference.records import PredictionRecords

log = structlog.get_logger()

SCORED = Counter("kestrel_inference_stream_scored_total", "Feature vectors scored by the stream scorer")
REJECTED = Counter("kestrel_inference_stream_rejected_total", "Feature vectors dead-lettered by the stream scorer")
BATCH_SECONDS = Histogram(
    "kestrel_inference_stream_batch_seconds",
    "Decode, score and ack time of one batch",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
SHADOW_SCORED = Counter("kestrel_inference_shadow_scored_total", "Vectors a challenger scored in shadow")
SHADOW_FAILED = Counter("kestrel_inference_shadow_failed_total", "Vectors the shadow challenger could not score")
EVENT_LAG = Gauge("kestrel_inference_stream_event_lag_seconds", "Wall clock minus the newest event time scored")


class StreamScorer:
    """BatchConsumer handler: decode, score, produce and await the acks; rejected vectors are returned."""

    def __init__(
        self,
        vectors: AvroSerde,
        records: PredictionRecords,
        model: TritonModel,
        producer: Producer,
        feature_set: FeatureSet,
        *,
        threshold: float,
        concurrency: int = 4,
        delivery_timeout_s: float = 30.0,
        shadow: tuple[TritonModel, PredictionRecords] | None = None,
    ) -> None:
        self._serde = vectors
        self._fast = VectorDecoder(vectors, len(feature_set.names))
        self._records = records
        self._model = model
        self._producer = producer
        self._check = VectorCheck(feature_set.version_id, feature_set.names)
        self._pick = operator.itemgetter(*feature_set.names)
        self._version = feature_set.version_id
        self._threshold = threshold
        self._concurrency = concurrency
        self._timeout = delivery_timeout_s
        self.healthy: bool | None = None
        """None until the first batch; then whether Triton and Kafka took the last one."""
        self._shadow = shadow
        self.shadow_version: str | None = None
        """A challenger to score beside the champion (the lifecycle follower sets it); None: no shadow."""

    async def __call__(self, records: Sequence[Any]) -> list[Rejection]:
        with bound_contextvars(offsets=offset_ranges(records)):
            started = time.perf_counter()
            rows, rejections = self._prepare(records)
            if len(rows):
                await self._score(rows, started)
            REJECTED.inc(len(rejections))
            BATCH_SECONDS.observe(time.perf_counter() - started)
            log.debug(
                "stream_batch_scored",
                records=len(records),
                scored=len(rows),
                rejected=len(rejections),
                seconds=round(time.perf_counter() - started, 4),
            )
            return rejections

    async def _score(self, rows: StreamRows, started: float) -> None:
        """Scores the rows and waits for Kafka to take their records; UnavailableError (logged) when either fails."""
        matrix = rows.values.astype(np.float32)  # once: the shadow scores the same matrix
        try:
            await self._score_with(self._model, self._records, rows, matrix, started)
            if self.shadow_version is not None and self._shadow is not None:
                await self._score_shadow(rows, matrix, self.shadow_version, started)
        except UnavailableError as exc:
            self.healthy = False
            log.warning("stream_batch_failed", rows=len(rows), error=str(exc))
            raise
        self.healthy = True
        SCORED.inc(len(rows))
        EVENT_LAG.set(time.time() - max(rows.event_times) / 1000)

    async def _score_with(
        self, model: TritonModel, records: PredictionRecords, rows: StreamRows, matrix: np.ndarray, started: float
    ) -> None:
        scores = await model.score(matrix, self._concurrency)
        latency_us = int((time.perf_counter() - started) * 1e6 / len(rows))
        now = time.time_ns() // 1_000_000
        scored = stream_predictions(
            rows,
            scores.values,
            scores.versions,
            model.name,
            now,
            threshold=self._threshold,
            feature_set_version=self._version,
        )
        await self._produce(records.stream_records(scored, latency_us, now))

    async def _score_shadow(self, rows: StreamRows, matrix: np.ndarray, version: str, started: float) -> None:
        """The challenger's scores of the same rows, logged with source=shadow. Its failure is counted, never
        the batch's: only the champion answers, so only the champion may hold the stream up."""
        assert self._shadow is not None
        model, records = self._shadow
        model.version = version
        try:
            await self._score_with(model, records, rows, matrix, started)
        except UnavailableError as exc:
            SHADOW_FAILED.inc(len(rows))
            log.warning("shadow_scoring_failed", version=version, rows=len(rows), error=str(exc))
            return
        SHADOW_SCORED.inc(len(rows))

    def _prepare(self, records: Sequence[Any]) -> tuple[StreamRows, list[Rejection]]:
        """The batch's rows: packed vectors of this feature set through the fast decoder, all at once; the rest
        (older writers' maps, other versions, undecodable) through the generic serde, one by one."""
        fast = self._fast.decode_batch([record.value for record in records])
        ours = [k for k, version in enumerate(fast.versions) if version == self._version]
        if len(ours) == len(records):  # the usual batch: every record current
            return StreamRows(fast.entity_ids, fast.event_ids, fast.event_times, fast.values), []
        taken = {fast.positions[k] for k in ours}
        slow: list[tuple[str, str, int, Sequence[float]]] = []
        rejections = [
            Rejection(record, problem)
            for i, record in enumerate(records)
            if i not in taken and (problem := self._slow(record, slow))
        ]
        return self._rows(fast, ours, slow), rejections

    def _rows(
        self, fast: DecodedVectors, ours: list[int], slow: list[tuple[str, str, int, Sequence[float]]]
    ) -> StreamRows:
        """The fast path's rows of this version, then the generic path's."""
        named = np.array([s[3] for s in slow], dtype=np.float64).reshape(len(slow), self._fast.size)
        return StreamRows(
            [fast.entity_ids[k] for k in ours] + [s[0] for s in slow],
            [fast.event_ids[k] for k in ours] + [s[1] for s in slow],
            [fast.event_times[k] for k in ours] + [s[2] for s in slow],
            np.concatenate([fast.values[ours], named]),
        )

    def _slow(self, record: Any, rows: list[tuple[str, str, int, Sequence[float]]]) -> str | None:
        """The generic path (older writer schemas, features by name); returns why a record is rejected."""
        try:
            value = self._serde.deserialize(record.value)
        except SerializationError as exc:
            return exc.reason
        if value["feature_set_version"] != self._version:
            return (
                f"feature set version {value['feature_set_version']!r} is not the one this scorer's model "
                f"takes ({self._version}); replay it to a scorer of that version"
            )
        if problem := self._check.problem(value):
            return problem
        features = self._check.by_name(value)
        rows.append((value["entity_id"], value["event_id"], value["event_time"], self._pick(features)))
        return None

    async def _produce(self, out: list[OutRecord]) -> None:
        await (await self._producer.produce_batch(out)).confirm(self._timeout, "prediction records")
