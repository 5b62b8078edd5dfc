"""Predict's core, shared by the three RPCs: validate, read online features, merge the event in, score, record.

A batch of requests costs one online-store round trip and one Triton request (split above the model's
max_batch_size), whichever RPC it came from. Unary Predict calls that arrive while others are being scored
are gathered into such batches by `Coalescer`, so concurrency turns into rows per Triton request instead of
requests (the Python backend pays its overhead per request, batched or not).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import structlog
from prometheus_client import Counter, Histogram

from kestrel.api.v1 import inference_pb2
from kestrel.common.convert import event_to_record
from kestrel.common.errors import InvalidArgumentError, UnavailableError
from kestrel.featureset import FeatureSet
from kestrel.featureset.request import RequestFeatures
from kestrel.featureset.wire import PredictionEncoder
from kestrel.common.kafka import OutRecord
from kestrel.online_store import OnlineBatch, OnlineStore
from kestrel.common.validation import Limits, Violation, check_id, validate_event
from kestrel.inference.model import Scores, TritonModel

log = structlog.get_logger()

PREDICTIONS = Counter("kestrel_inference_predictions_total", "Predictions answered", ["source", "degraded"])
FLAGS = Counter("kestrel_inference_flags_total", "Predictions carrying each flag", ["flag"])
SCORE_SECONDS = Histogram("kestrel_inference_score_seconds", "Features, model and record time of one scored batch",
                          buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1))
BATCH_ROWS = Histogram("kestrel_inference_batch_rows", "Requests scored together",
                       buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024))

MISSING, STALE, NEWER, STORE_DOWN, FALLBACK = (
    "missing_features", "stale_features", "features_newer_than_event", "online_store_unavailable", "fallback_score")
FALLBACK_MODEL = "fallback"


@dataclass(slots=True)
class Item:
    """One validated request."""

    entity_id: str
    record: dict[str, Any]
    """The event as its Avro record (event_to_record)."""
    request_id: str = ""


@dataclass(slots=True)
class Prediction:
    prediction_id: str
    item: Item
    score: float
    decision: bool
    model_name: str
    model_version: str
    features_age_ms: int
    flags: list[str]
    features: np.ndarray = field(repr=False)

    @property
    def degraded(self) -> bool:
        return bool(self.flags) and any(f != NEWER for f in self.flags)


def parse(requests: Sequence[inference_pb2.PredictRequest], limits: Limits, now_ms: int,
          field_prefix: Callable[[int], str] = lambda i: "") -> list[Item]:
    """Validates every request; one InvalidArgumentError naming every bad field (with its request index)."""
    items: list[Item] = []
    violations: list[Violation] = []
    for i, request in enumerate(requests):
        prefix = field_prefix(i)
        if not request.HasField("event"):
            violations.append(Violation(f"{prefix}event", "is required"))
            continue
        record = event_to_record(request.event)
        for v in validate_event(record, now_ms, limits, size=request.event.ByteSize()):
            violations.append(Violation(f"{prefix}event.{v.field}", v.reason))
        entity_id = request.entity_id or record["entity_id"]
        if request.entity_id and (bad := check_id(request.entity_id, f"{prefix}entity_id")):
            violations.append(bad)
        items.append(Item(entity_id, record, request.request_id))
    if violations:
        first, *rest = violations
        raise InvalidArgumentError(first.field, first.reason, [(v.field, v.reason) for v in rest])
    return items


class Scorer:
    """Scores validated items: online features, request-time merge, Triton, prediction records."""

    def __init__(self, store: OnlineStore, feature_set: FeatureSet, model: TritonModel, *, threshold: float,
                 fallback_score: float | None, encoder: PredictionEncoder | None = None, topic: str = "",
                 publish: Callable[[list[OutRecord]], Awaitable[None]] | None = None) -> None:
        self._store = store
        self._merge = RequestFeatures(feature_set)
        self._names = feature_set.names
        self._version = feature_set.version_id
        self._model = model
        self.threshold = threshold
        self._fallback = fallback_score
        self._encoder = encoder
        self._topic = topic
        self._publish = publish if encoder is not None else None

    @property
    def feature_set_version(self) -> str:
        return self._version

    async def score(self, items: Sequence[Item]) -> list[Prediction]:
        if not items:
            return []
        started = time.perf_counter()
        BATCH_ROWS.observe(len(items))
        online, store_down = await self._online([item.entity_id for item in items])
        matrix, flags = self._features(items, online, store_down)
        try:
            scores = await self._model.score(matrix)
            model_name = self._model.name
        except UnavailableError as exc:
            if self._fallback is None:
                log.warning("predict_unavailable", error=str(exc), requests=len(items),
                            request_ids=[i.request_id for i in items[:10] if i.request_id])
                raise
            scores = Scores(np.full(len(items), self._fallback), [""] * len(items))
            model_name = FALLBACK_MODEL
            for row in flags:
                row.append(FALLBACK)
        predictions = [
            Prediction(uuid.uuid4().hex, item, float(scores.values[i]), bool(scores.values[i] >= self.threshold),
                       model_name, scores.versions[i], int(online.age_ms[i]), flags[i], matrix[i])
            for i, item in enumerate(items)
        ]
        latency_us = int((time.perf_counter() - started) * 1e6)
        SCORE_SECONDS.observe(latency_us / 1e6)
        self._count(predictions)
        for p in predictions:
            if p.flags:  # request ids are for tracing: logged where a prediction is out of the ordinary
                log.debug("prediction_flagged", request_id=p.item.request_id, entity_id=p.item.entity_id,
                          prediction_id=p.prediction_id, flags=p.flags)
        if self._publish is not None:
            await self._publish([self._out(p, latency_us) for p in predictions])
        return predictions

    async def _online(self, entity_ids: list[str]) -> tuple[OnlineBatch, bool]:
        try:
            return await self._store.get_many(entity_ids), False
        except UnavailableError as exc:
            log.warning("online_store_unavailable", error=str(exc))
            return self._store.defaults_for(entity_ids), True

    def _features(self, items: Sequence[Item], online: OnlineBatch, store_down: bool) -> tuple[np.ndarray, list[list[str]]]:
        n = len(items)
        source = self._merge.source or "amount"
        amount = np.fromiter((item.record[source] for item in items), dtype=np.float64, count=n)
        event_time = np.fromiter((item.record["event_time"] for item in items), dtype=np.int64, count=n)
        included = np.fromiter((online.event_ids[i] == item.record["event_id"] for i, item in enumerate(items)),
                               dtype=bool, count=n)
        matrix = self._merge.merge(online.values, online.found, online.event_time_ms, amount, event_time, included)
        flags: list[list[str]] = []
        for i in range(n):
            row: list[str] = []
            if store_down:
                row.append(STORE_DOWN)
            elif not online.found[i]:
                row.append(MISSING)
            elif online.stale[i]:
                row.append(STALE)
            if online.found[i] and not included[i] and online.event_time_ms[i] > event_time[i]:
                row.append(NEWER)
            flags.append(row)
        return matrix, flags

    def _out(self, p: Prediction, latency_us: int) -> OutRecord:
        """The kestrel.predictions.v1 record of a prediction, encoded (source api)."""
        assert self._encoder is not None
        event = p.item.record
        value = self._encoder.encode(
            prediction_id=p.prediction_id, event_id=event["event_id"], entity_id=p.item.entity_id,
            event_time=event["event_time"], model_name=p.model_name, model_version=p.model_version, score=p.score,
            threshold=self.threshold, decision=p.decision, feature_set_version=self._version,
            features=p.features.tolist(), features_age_ms=p.features_age_ms, degraded=p.degraded, flags=p.flags,
            latency_us=latency_us, source="api", predicted_at=time.time_ns() // 1_000_000)
        return OutRecord(self._topic, value, p.item.entity_id.encode())

    def response(self, p: Prediction) -> inference_pb2.PredictResponse:
        return inference_pb2.PredictResponse(
            prediction_id=p.prediction_id, score=p.score, decision=p.decision, threshold=self.threshold,
            model_name=p.model_name, model_version=p.model_version, features_age_ms=p.features_age_ms,
            degraded=p.degraded, flags=p.flags, feature_set_version=self._version,
        )

    @staticmethod
    def _count(predictions: list[Prediction]) -> None:
        degraded = sum(p.degraded for p in predictions)
        if degraded:
            PREDICTIONS.labels("api", "true").inc(degraded)
        if len(predictions) - degraded:
            PREDICTIONS.labels("api", "false").inc(len(predictions) - degraded)
        for p in predictions:
            for flag in p.flags:
                FLAGS.labels(flag).inc()


class Coalescer:
    """Gathers concurrent unary Predict calls into batches with no timer: whatever has arrived while earlier
    batches were in flight is scored together, so a lone call waits for nothing and 64 concurrent callers
    share a few Triton requests. At most `max_in_flight` batches run at once, each of at most `max_rows`."""

    def __init__(self, scorer: Scorer, *, max_rows: int = 256, max_in_flight: int = 1) -> None:
        self._scorer = scorer
        self._max_rows = max_rows
        self._slots = max_in_flight
        self._queue: list[tuple[Item, asyncio.Future[Prediction]]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, item: Item) -> Prediction:
        future: asyncio.Future[Prediction] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        self._dispatch()
        return await future

    def _dispatch(self) -> None:
        while self._queue and self._slots > 0:
            batch, self._queue = self._queue[:self._max_rows], self._queue[self._max_rows:]
            self._slots -= 1
            task = asyncio.create_task(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[tuple[Item, asyncio.Future[Prediction]]]) -> None:
        live = [(item, future) for item, future in batch if not future.done()]  # cancelled callers drop out
        try:
            if live:
                predictions = await self._scorer.score([item for item, _ in live])
                for (_, future), prediction in zip(live, predictions):
                    if not future.done():
                        future.set_result(prediction)
        except Exception as exc:  # noqa: BLE001 - every caller of the batch gets the batch's error
            for _, future in live:
                if not future.done():
                    future.set_exception(exc)
        finally:
            self._slots += 1
            self._dispatch()
