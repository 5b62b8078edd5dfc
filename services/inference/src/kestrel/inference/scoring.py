"""Predict's pipeline, shared by the three RPCs: online features, the core's merge, the model, prediction records.

A batch of requests costs one online-store round trip and one Triton request (split above the model's
max_batch_size), whichever RPC it came from. The math is the core's (kestrel.inference.core); each step
with I/O is a small collaborator, so this class only puts them in order.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence

import structlog
from prometheus_client import Counter, Histogram

from kestrel.common.errors import UnavailableError
from kestrel.common.kafka import OutRecord
from kestrel.featureset.request import RequestFeatures
from kestrel.inference import core
from kestrel.inference.core import Item, Prediction
from kestrel.inference.model import FallbackModel
from kestrel.inference.online import OnlineFeatures
from kestrel.inference.records import PredictionRecords

log = structlog.get_logger()

PREDICTIONS = Counter("kestrel_inference_predictions_total", "Predictions answered", ["source", "degraded"])
FLAGS = Counter("kestrel_inference_flags_total", "Predictions carrying each flag", ["flag"])
SCORE_SECONDS = Histogram(
    "kestrel_inference_score_seconds",
    "Features, model and record time of one scored batch",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)
BATCH_ROWS = Histogram(
    "kestrel_inference_batch_rows", "Requests scored together", buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
)


class Scorer:
    """Scores validated items and hands their prediction records to `publish`."""

    def __init__(
        self,
        features: OnlineFeatures,
        request_features: RequestFeatures,
        model: FallbackModel,
        records: PredictionRecords,
        publish: Callable[[list[OutRecord]], Awaitable[None]],
        *,
        threshold: float,
        feature_set_version: str,
    ) -> None:
        self._features = features
        self._merge = request_features
        self._model = model
        self._records = records
        self._publish = publish
        self.threshold = threshold
        self.feature_set_version = feature_set_version

    async def score(self, items: Sequence[Item]) -> list[Prediction]:
        if not items:
            return []
        started = time.perf_counter()
        online, store_down = await self._features.fetch([item.entity_id for item in items])
        matrix, flags = core.merge(self._merge, items, online, store_down)
        try:
            scores, model_name = await self._model.score(matrix)
        except UnavailableError as exc:
            log.warning(
                "predict_unavailable",
                error=str(exc),
                requests=len(items),
                request_ids=[i.request_id for i in items[:10] if i.request_id],
            )
            raise
        predictions = core.predictions(
            items,
            matrix,
            scores.values,
            scores.versions,
            model_name,
            online.age_ms,
            flags,
            threshold=self.threshold,
            feature_set_version=self.feature_set_version,
        )
        latency_us = int((time.perf_counter() - started) * 1e6)
        await self._publish(self._records.records(predictions, latency_us, time.time_ns() // 1_000_000))
        observe(predictions, latency_us)
        return predictions


def observe(predictions: list[Prediction], latency_us: int) -> None:
    """Metrics of one scored batch, and its one debug line (request ids only where a prediction is flagged)."""
    BATCH_ROWS.observe(len(predictions))
    SCORE_SECONDS.observe(latency_us / 1e6)
    degraded = sum(p.degraded for p in predictions)
    if degraded:
        PREDICTIONS.labels("api", "true").inc(degraded)
    if len(predictions) - degraded:
        PREDICTIONS.labels("api", "false").inc(len(predictions) - degraded)
    for p in predictions:
        for flag in p.flags:
            FLAGS.labels(flag).inc()
    log.debug(
        "predict_batch_scored",
        requests=len(predictions),
        degraded=degraded,
        latency_us=latency_us,
        flagged={p.request_id or p.prediction_id: p.flags for p in predictions if p.flags},
    )
