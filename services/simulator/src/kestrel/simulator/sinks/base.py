"""The sink contract, delivery counters, and the two sinks without a server (null, JSON lines)."""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

Record = dict[str, Any]


@dataclass
class SinkStats:
    """What happened to what was sent: accepted, rejected as invalid (by field), or lost to a failure."""

    accepted: int = 0
    rejected: int = 0
    failed: int = 0
    in_flight: int = 0
    rejections: Counter[str] = field(default_factory=Counter)
    last_error: str | None = None


class Sink(Protocol):
    events: SinkStats
    labels: SinkStats

    async def start(self) -> None: ...

    async def send_events(self, events: list[Record]) -> None: ...

    async def send_labels(self, labels: list[Record]) -> None: ...

    async def close(self) -> None:
        """Wait for everything sent to be acknowledged (or to fail), then release connections."""
        ...


class NullSink:
    """Accepts everything and sends nothing: measures the generator alone."""

    def __init__(self) -> None:
        self.events, self.labels = SinkStats(), SinkStats()

    async def start(self) -> None:
        pass

    async def send_events(self, events: list[Record]) -> None:
        self.events.accepted += len(events)

    async def send_labels(self, labels: list[Record]) -> None:
        self.labels.accepted += len(labels)

    async def close(self) -> None:
        pass


class JsonlSink:
    """One JSON object per line, `{"topic": ..., "key": ..., "value": {...}}`: datasets without a broker."""

    def __init__(self, events_topic: str, labels_topic: str, path: str | None = None) -> None:
        self.events, self.labels = SinkStats(), SinkStats()
        self._topics = (events_topic, labels_topic)
        self._path = path
        self._out: IO[str] = sys.stdout

    async def start(self) -> None:
        if self._path and self._path != "-":
            self._out = open(self._path, "w", encoding="utf-8")

    async def send_events(self, events: list[Record]) -> None:
        self._write(self._topics[0], events)
        self.events.accepted += len(events)

    async def send_labels(self, labels: list[Record]) -> None:
        self._write(self._topics[1], labels)
        self.labels.accepted += len(labels)

    def _write(self, topic: str, records: list[Record]) -> None:
        dumps = json.dumps
        self._out.write(
            "".join(f'{{"topic": "{topic}", "key": {dumps(r["entity_id"])}, "value": {dumps(r)}}}\n' for r in records)
        )

    async def close(self) -> None:
        self._out.flush()
        if self._out is not sys.stdout:
            self._out.close()
