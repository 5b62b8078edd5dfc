"""The logic behind every ingest RPC: validate each event, produce the valid ones, report per item."""

from __future__ import annotations

import asyncio
import time
from collections import Counter as Counter_
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from prometheus_client import Counter, Histogram

from kestrel.api.v1 import event_pb2
from kestrel.common.convert import event_to_record
from kestrel.common.errors import UnavailableError
from kestrel.common.kafka import BatchAck, Delivery, OutRecord, Producer, Rejection
from kestrel.common.kafka.deadletter import dead_letter_value
from kestrel.common.validation import Limits, Violation, validate_event

log = structlog.get_logger()

EVENTS = Counter("kestrel_ingest_events_total", "Events seen by ingest", ["outcome"])
REJECTIONS = Counter("kestrel_ingest_rejections_total", "Rejected events by offending field", ["field"])
BATCH_SECONDS = Histogram("kestrel_ingest_publish_seconds", "Time to validate and ack one call's events")


@dataclass(slots=True)
class Outcome:
    index: int
    event_id: str
    violations: list[Violation] = field(default_factory=list)
    delivery: Delivery | None = None
    error: str | None = None
    """Set when a valid event could not be acknowledged by the broker (safe to retry)."""

    @property
    def accepted(self) -> bool:
        return self.delivery is not None


@dataclass(frozen=True, slots=True)
class _RejectedSource:
    """Shape of a dead-letter source for an event that came over gRPC, not from a topic."""

    value: bytes
    key: bytes | None
    topic: str = "grpc:kestrel.api.v1.IngestService"
    partition: int = -1
    offset: int = -1
    headers: tuple[tuple[str, bytes], ...] = ()


class EventPublisher:
    def __init__(
        self,
        producer: Producer,
        serialize_event: Callable[[dict[str, Any]], bytes],
        topic: str,
        limits: Limits,
        delivery_timeout_s: float,
        dead_letter: tuple[str, Callable[[dict[str, Any]], bytes]] | None = None,
    ) -> None:
        self._producer = producer
        self._serialize = serialize_event
        self._topic = topic
        self._limits = limits
        self._timeout = delivery_timeout_s
        self._dead_letter = dead_letter
        self._watchers: set[asyncio.Task[None]] = set()

    async def publish(self, events: Sequence[event_pb2.Event]) -> list[Outcome]:
        """Outcome per event, in order. Raises UnavailableError only when nothing could be attempted."""
        if self._producer.brokers_down:
            raise UnavailableError("kafka brokers unreachable; nothing was published, retry later")
        with BATCH_SECONDS.time():
            outcomes, pending, dead = self._prepare(events)
            if dead:  # not awaited: callers already have the reason; the audit copy must not slow them
                self._watch(await self._producer.produce_batch(dead))
            await self._produce(pending)
        self._count(outcomes)
        return outcomes

    def _prepare(
        self, events: Sequence[event_pb2.Event]
    ) -> tuple[list[Outcome], list[tuple[Outcome, OutRecord]], list[OutRecord]]:
        """Validate every event; serialize the valid ones and dead-letter records for the rest."""
        now_ms = int(time.time() * 1000)
        outcomes: list[Outcome] = []
        pending: list[tuple[Outcome, OutRecord]] = []
        dead: list[OutRecord] = []
        for index, event in enumerate(events):
            record = event_to_record(event)
            violations = validate_event(record, now_ms, self._limits, size=event.ByteSize())
            outcome = Outcome(index, event.event_id, [Violation(f"event.{v.field}", v.reason) for v in violations])
            outcomes.append(outcome)
            if not violations:
                value = self._serialize(record)
                pending.append((outcome, OutRecord(self._topic, value, event.entity_id.encode())))
            elif self._dead_letter is not None:
                dead.append(self._dead_letter_record(event, outcome))
        return outcomes, pending, dead

    async def _produce(self, pending: list[tuple[Outcome, OutRecord]]) -> None:
        ack = await self._producer.produce_batch([record for _, record in pending])
        await ack.wait(self._timeout)
        errors = ack.errors(f"broker did not acknowledge within {self._timeout:g}s")
        for index, (outcome, _) in enumerate(pending):
            outcome.delivery, outcome.error = ack.delivery(index), errors.get(index)
        if pending and all(o.error for o, _ in pending):
            raise UnavailableError(f"kafka did not acknowledge any event: {pending[0][0].error}")

    def _dead_letter_record(self, event: event_pb2.Event, outcome: Outcome) -> OutRecord:
        """Rejected events are kept for audit; the caller already has the reason, so this is not awaited."""
        assert self._dead_letter is not None
        topic, serialize = self._dead_letter
        source = _RejectedSource(event.SerializeToString(), event.entity_id.encode() or None)
        reason = "; ".join(str(v) for v in outcome.violations)
        value = serialize(dead_letter_value("ingest", Rejection(source, reason, "invalid")))
        return OutRecord(topic, value, source.key)

    def _watch(self, ack: BatchAck) -> None:
        task = asyncio.create_task(_log_dead_letter_failures(ack, self._timeout))
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)

    @staticmethod
    def _count(outcomes: list[Outcome]) -> None:
        """Metrics per call, not per event: label lookups cost more than the increments."""
        outcome_counts = Counter_(
            ("accepted" if o.accepted else "rejected" if o.violations else "failed") for o in outcomes
        )
        for outcome, n in outcome_counts.items():
            EVENTS.labels(outcome).inc(n)
        for field_name, n in Counter_(v.field for o in outcomes for v in o.violations).items():
            REJECTIONS.labels(field_name).inc(n)


async def _log_dead_letter_failures(ack: BatchAck, timeout_s: float) -> None:
    try:
        await ack.confirm(timeout_s, "dead letters")
    except UnavailableError as exc:
        log.warning("ingest_dead_letter_failed", error=str(exc))
