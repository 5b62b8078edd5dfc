"""The stream scorer: every feature vector on kestrel.features.v1 scored through Triton, as source=stream.

BatchConsumer handler. A consumer batch (thousands of vectors) goes to Triton as requests of up to the
model's max_batch_size rows, several in flight; the prediction records are produced and acknowledged before
the batch's offsets are committed. Triton or Kafka down: UnavailableError, so the consumer retries the batch
with backoff and commits nothing. Prediction ids are derived from (event, model, version), so a replayed
batch produces the same ids and the prediction log stays free of duplicates.
"""

from __future__ import annotations

import operator
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import structlog
from prometheus_client import Counter, Gauge, Histogram

from kestrel.common.errors import SerializationError, UnavailableError
from kestrel.common.features import FeatureSet
from kestrel.common.kafka import Delivery, OutRecord, Producer, Rejection
from kestrel.inference.model import TritonModel

log = structlog.get_logger()

SCORED = Counter("kestrel_inference_stream_scored_total", "Feature vectors scored by the stream scorer")
REJECTED = Counter("kestrel_inference_stream_rejected_total", "Feature vectors dead-lettered by the stream scorer")
BATCH_SECONDS = Histogram("kestrel_inference_stream_batch_seconds", "Decode, score and ack time of one batch",
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
EVENT_LAG = Gauge("kestrel_inference_stream_event_lag_seconds", "Wall clock minus the newest event time scored")

_IDS = uuid.UUID("0b7c1f8e-5a4d-4f0e-9a61-6b3e2f1c9d40")


def stream_prediction_id(event_id: str, model_name: str, model_version: str) -> str:
    """Stable across replays: the same event scored by the same model version always gets the same id."""
    return uuid.uuid5(_IDS, f"{event_id}\x00{model_name}\x00{model_version}").hex


class StreamScorer:
    def __init__(self, decode: Callable[[list[bytes]], list[Any]], serialize_many: Callable[[Iterable[dict[str, Any]]], list[bytes]],
                 model: TritonModel, producer: Producer, feature_set: FeatureSet, topic: str, *,
                 threshold: float, concurrency: int = 4, delivery_timeout_s: float = 30.0) -> None:
        self._decode = decode
        self._serialize_many = serialize_many
        self._model = model
        self._producer = producer
        self._names = list(feature_set.names)
        self._name_set = frozenset(self._names)
        self._pick = operator.itemgetter(*self._names)
        self._version = feature_set.version_id
        self._topic = topic
        self._threshold = threshold
        self._concurrency = concurrency
        self._timeout = delivery_timeout_s
        self.healthy: bool | None = None
        """None until the first batch; then whether Triton and Kafka took the last one."""

    async def __call__(self, records: Sequence[Any]) -> list[Rejection]:
        started = time.perf_counter()
        vectors, rejections = self._prepare(records, self._decode([r.value for r in records]))
        if vectors:
            matrix = np.array([self._pick(v["features"]) for v in vectors], dtype=np.float32)
            try:
                scores = await self._model.score(matrix, self._concurrency)
                latency_us = int((time.perf_counter() - started) * 1e6 / max(1, len(vectors)))
                out = self._records(vectors, scores.values, scores.versions, latency_us)
                await self._produce(out)
            except UnavailableError:
                self.healthy = False
                raise
            self.healthy = True
            SCORED.inc(len(vectors))
            EVENT_LAG.set(time.time() - max(v["event_time"] for v in vectors) / 1000)
        if rejections:
            REJECTED.inc(len(rejections))
        BATCH_SECONDS.observe(time.perf_counter() - started)
        return rejections

    def _prepare(self, records: Sequence[Any], decoded: Sequence[Any]) -> tuple[list[dict[str, Any]], list[Rejection]]:
        vectors, rejections = [], []
        for record, value in zip(records, decoded):
            if isinstance(value, SerializationError):
                rejections.append(Rejection(record, value.reason))
            elif value["feature_set_version"] != self._version:
                rejections.append(Rejection(record, (
                    f"feature set version {value['feature_set_version']!r} is not the one this scorer's model "
                    f"takes ({self._version}); replay it to a scorer of that version")))
            elif value["features"].keys() != self._name_set:
                missing = sorted(self._name_set - value["features"].keys())
                extra = sorted(value["features"].keys() - self._name_set)
                rejections.append(Rejection(record, f"features do not match {self._version}: missing {missing}, "
                                                    f"unexpected {extra}"))
            else:
                vectors.append(value)
        return vectors, rejections

    def _records(self, vectors: list[dict[str, Any]], scores: np.ndarray, versions: list[str],
                 latency_us: int) -> list[OutRecord]:
        now = int(time.time() * 1000)
        name = self._model.name
        records = [{
            "prediction_id": stream_prediction_id(v["event_id"], name, versions[i]),
            "event_id": v["event_id"],
            "entity_id": v["entity_id"],
            "event_time": v["event_time"],
            "model_name": name,
            "model_version": versions[i],
            "score": float(scores[i]),
            "threshold": self._threshold,
            "decision": bool(scores[i] >= self._threshold),
            "feature_set_version": self._version,
            "features": v["features"],
            "features_age_ms": max(0, now - v["event_time"]),
            "degraded": False,
            "flags": [],
            "latency_us": latency_us,
            "source": "stream",
            "predicted_at": now,
        } for i, v in enumerate(vectors)]
        values = self._serialize_many(records)
        return [OutRecord(self._topic, value, v["entity_id"].encode()) for value, v in zip(values, vectors)]

    async def _produce(self, out: list[OutRecord]) -> None:
        ack = await self._producer.produce_batch(out)
        complete = await ack.wait(self._timeout)
        failed = [r for r in ack.results if not isinstance(r, Delivery)]
        if failed or not complete:
            reason = str(failed[0]) if failed else f"no ack within {self._timeout:g}s"
            raise UnavailableError(f"{len(failed) or len(out)} prediction records not acknowledged: {reason}")
