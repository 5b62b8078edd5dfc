"""Events in, window closes with their column counts out: the events subject's StatefulProcessor. No I/O.

The window rule is the predictions' (windows.Windows: event time, watermark over partitions, lateness, late counts),
under one key for all events; beside each open window the state keeps the counts of its monitored columns
(kestrel.model.events), a few hundred counters however many events, so the close carries its own data and the
report needs no store to read from."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import ConsumerRecord
from prometheus_client import Counter

from kestrel.common.errors import SerializationError
from kestrel.common.kafka import OutRecord, Rejection
from kestrel.common.stateful import BatchResult, KeyedStateStore
from kestrel.drift_monitor import windows
from kestrel.drift_monitor.windows import Close, PartitionWindows, Windows
from kestrel.model import events
from kestrel.model.events import Counts

EVENTS_SEEN = Counter("kestrel_drift_monitor_events_total", "Event records by outcome", ["outcome"])

KEY = "event-windows"
SOURCE = ("events", "")
"""The windows key of every event (windows.Windows keys by model version; events have none)."""
CLOSES = "drift-monitor.event-closes"
"""Topic name of the close outputs: they go to the events report sink, never to Kafka."""


@dataclass
class EventPartition:
    """One events partition's state: the window rule's counters and each open window's column counts."""

    windows: PartitionWindows = field(default_factory=PartitionWindows)
    counts: dict[int, Counts] = field(default_factory=dict)
    """Window start (ms) -> column -> value -> events."""


@dataclass(frozen=True)
class EventClose:
    """A closed window (or run of windows) of events and what it counted."""

    close: Close
    counts: Counts

    def to_json(self) -> bytes:
        return json.dumps({"close": self.close.__dict__, "counts": self.counts}, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> EventClose:
        doc = json.loads(data)
        return cls(Close.from_json(json.dumps(doc["close"]).encode()), doc["counts"])


def pack(part: EventPartition) -> bytes:
    doc = {"windows": json.loads(windows.pack(part.windows)), "counts": {str(s): c for s, c in part.counts.items()}}
    return json.dumps(doc, separators=(",", ":")).encode()


def unpack(data: bytes) -> EventPartition:
    doc = json.loads(data)
    counts = {int(s): c for s, c in doc["counts"].items()}
    return EventPartition(windows.unpack(json.dumps(doc["windows"]).encode()), counts)


def take(parts: Sequence[EventPartition], close: Close) -> EventClose:
    """The counts of the close's windows, summed over the partitions and removed from them."""
    counts: Counts = {}
    for part in parts:
        for start in [s for s in part.counts if close.start <= s < close.end]:
            events.merge(counts, part.counts.pop(start))
    return EventClose(close, counts)


class EventCodec:
    """Packs a partition's event windows for the changelog; never evicted (closing windows keeps it small)."""

    def new(self) -> EventPartition:
        return EventPartition()

    def pack(self, state: EventPartition) -> bytes:
        return pack(state)

    def unpack(self, packed: bytes) -> EventPartition:
        return unpack(packed)

    def newest(self, state: EventPartition | bytes) -> int | None:
        return None


def event_store() -> KeyedStateStore[EventPartition]:
    return KeyedStateStore(EventCodec(), "drift-monitor-events", evict_after_ms=2**62)


class EventWindowProcessor:
    """Counts each event's monitored columns in its window, in record order, then closes what the watermark passed;
    each close is one output record (EventClose as JSON) for the events report sink."""

    def __init__(
        self, rule: Windows, store: KeyedStateStore[EventPartition], decode: Callable[[bytes], dict[str, Any]]
    ) -> None:
        self._rule, self._store, self._decode = rule, store, decode

    def process(self, records: Sequence[ConsumerRecord], now_ms: int) -> BatchResult:
        result = BatchResult()
        parts = {p: self._store.state(p, KEY) for p in sorted(self._store.partitions)}
        done = windows.closed_until({p: s.windows for p, s in parts.items()})
        for record in records:
            part = parts[record.partition]
            if record.offset >= part.windows.offset:
                self._one(record, part, done, result, now_ms)
                part.windows.offset = record.offset + 1
            result.offsets[(record.topic, record.partition)] = record.offset + 1
        closes = self._rule.close({p: s.windows for p, s in parts.items()}, now_ms)
        result.outputs = [OutRecord(CLOSES, take(list(parts.values()), c).to_json(), b"events") for c in closes]
        return result

    def _one(
        self, record: ConsumerRecord, part: EventPartition, done: int | None, result: BatchResult, now_ms: int
    ) -> None:
        try:
            event = self._decode(record.value)
            keys = events.keys(event)
        except (SerializationError, KeyError, TypeError, ValueError, OverflowError) as exc:
            EVENTS_SEEN.labels("rejected").inc()
            reason = exc.reason if isinstance(exc, SerializationError) else repr(exc)
            result.rejections.append(Rejection(record, f"undecodable: {reason}", type(exc).__name__))
            return
        if why := windows.unwindowable(event["event_time"], now_ms):
            EVENTS_SEEN.labels("rejected").inc()
            result.rejections.append(Rejection(record, f"invalid: {why}", "InvalidEventTime"))
            return
        if self._rule.add(part.windows, done, SOURCE, event["event_time"]):
            EVENTS_SEEN.labels("late").inc()
            return
        events.add(part.counts.setdefault(self._rule.start(event["event_time"]), {}), keys)
        EVENTS_SEEN.labels("counted").inc()
