"""One batch of event records in, feature vectors and rejections out; state updated in the store. No I/O."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import ConsumerRecord
from prometheus_client import Counter

from kestrel.common.errors import SerializationError
from kestrel.common.kafka import OutRecord, Rejection
from kestrel.common.stateful import BatchResult
from kestrel.common.validation import Limits, validate_event
from kestrel.features.store import StateStore
from kestrel.featureset.state import DUPLICATE, FeatureComputer, Late
from kestrel.featureset.wire import VectorEncoder

EVENTS = Counter("kestrel_features_events_total", "Event records by outcome", ["outcome"])
TRUNCATED = Counter(
    "kestrel_features_state_truncated_total", "Events forgotten because an entity exceeded max_events_per_entity"
)


@dataclass
class FeatureBatch(BatchResult):
    """Outputs are feature vectors, keyed by entity."""

    replayed: int = 0
    """Records already applied to the state before a restart (their vectors were already acknowledged)."""
    duplicates: int = 0
    """Events whose id their entity's state already held (retries): applied once, no second vector."""


class BatchProcessor:
    """Decodes, validates and applies events to per-entity state, in record order: a StatefulProcessor.

    Event times get ingest's bounds, as events can reach the topic without passing ingest: one stamped
    far ahead would otherwise become its entity's newest time and its partition's stream time.
    """

    def __init__(
        self,
        computer: FeatureComputer,
        store: StateStore,
        decode: Callable[[bytes], dict[str, Any]],
        encoder: VectorEncoder,
        features_topic: str,
        limits: Limits | None = None,
    ) -> None:
        self._computer, self._limits = computer, limits or Limits()
        self._store = store
        self._decode = decode
        self._encoder = encoder
        self._topic = features_topic
        fs = computer.feature_set
        self._entity, self._time = fs.entity, fs.time

    def process(self, records: Sequence[ConsumerRecord], now_ms: int) -> FeatureBatch:
        result = FeatureBatch()
        truncated = self._computer.truncated
        for record in records:
            self._one(record, now_ms, result)
            result.offsets[(record.topic, record.partition)] = record.offset + 1
        EVENTS.labels("vector").inc(len(result.outputs))
        EVENTS.labels("replayed").inc(result.replayed)
        EVENTS.labels("duplicate").inc(result.duplicates)
        TRUNCATED.inc(self._computer.truncated - truncated)
        return result

    def _one(self, record: ConsumerRecord, now_ms: int, result: FeatureBatch) -> None:
        try:
            event = self._decode(record.value)
        except SerializationError as exc:
            return self._reject(result, Rejection(record, f"undecodable: {exc.reason}", "SerializationError"))
        # Events reach the topic past ingest too (the simulator's Kafka sink, replays): the same contract holds.
        reason = self._computer.invalid(event) or "; ".join(map(str, validate_event(event, now_ms, self._limits)))
        if reason:
            return self._reject(result, Rejection(record, f"invalid event: {reason}", "InvalidEvent"))
        entity, t = event[self._entity], event[self._time]
        outcome = self._computer.update(self._store.state(record.partition, entity), event, record.offset)
        self._store.saw(record.partition, t)
        if outcome is None:
            result.replayed += 1
        elif outcome is DUPLICATE:
            result.duplicates += 1
        elif type(outcome) is Late:
            self._reject(result, Rejection(record, outcome.reason, "LateEvent"))
        else:
            value = self._encoder.encode(entity, event["event_id"], t, outcome, now_ms, event)  # type: ignore[arg-type]
            result.outputs.append(OutRecord(self._topic, value, entity.encode()))

    @staticmethod
    def _reject(result: FeatureBatch, rejection: Rejection) -> None:
        EVENTS.labels(rejection.error_type).inc()
        result.rejections.append(rejection)
