"""Dead-letter records: the original bytes, where they came from, and why they were rejected."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from kestrel.common.kafka.producer import OutRecord, Producer
from kestrel.common.topics import dead_letter_topic


class SourceRecord(Protocol):
    """What we need of a consumed record (aiokafka ConsumerRecord fits; read-only, so frozen records do too)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


@dataclass(frozen=True, slots=True)
class Rejection:
    """One record a handler could not process, and why."""

    record: SourceRecord
    reason: str
    error_type: str = "invalid"


def dead_letter_value(service: str, rejection: Rejection) -> dict[str, Any]:
    """The DeadLetter record (schemas/dead_letter.avsc) for a rejection."""
    rec = rejection.record
    return {
        "service": service,
        "original_topic": rec.topic,
        "partition": rec.partition,
        "offset": rec.offset,
        "key": rec.key,
        "value": rec.value or b"",
        "headers": [{"key": k, "value": v} for k, v in (rec.headers or ())],
        "reason": rejection.reason,
        "error_type": rejection.error_type,
        "failed_at": int(time.time() * 1000),
    }


class DeadLetterPublisher:
    """Publishes rejections and waits for the broker's ack, so offsets are committed only after."""

    def __init__(
        self, producer: Producer, service: str, serialize: Callable[[dict[str, Any]], bytes], topic: str | None = None
    ) -> None:
        self._producer = producer
        self._service = service
        self._serialize = serialize
        self.topic = topic or dead_letter_topic(service)

    async def publish(self, rejections: Sequence[Rejection]) -> None:
        if not rejections:
            return
        records = [
            OutRecord(self.topic, self._serialize(dead_letter_value(self._service, r)), r.record.key)
            for r in rejections
        ]
        await self._producer.send_many(records)
