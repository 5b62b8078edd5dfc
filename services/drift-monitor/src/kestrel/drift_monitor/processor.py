"""Predictions in, window closes out: the drift monitor's StatefulProcessor over kestrel.predictions.v1. No I/O."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from aiokafka import ConsumerRecord
from prometheus_client import Counter, Gauge

from kestrel.common.errors import SerializationError
from kestrel.common.kafka import OutRecord, Rejection
from kestrel.common.stateful import BatchResult, KeyedStateStore
from kestrel.common.validation import check_id
from kestrel.drift_monitor import windows
from kestrel.drift_monitor.windows import PartitionWindows, Windows

PREDICTIONS = Counter("kestrel_drift_monitor_predictions_total", "Prediction records by outcome", ["outcome"])
WATERMARK_LAG = Gauge(
    "kestrel_drift_monitor_watermark_lag_seconds",
    "Wall clock minus the watermark (lateness included): how long after its end a window can close at the soonest",
)

KEY = "windows"
"""The one state key per partition: the partition's whole part of the windows state."""

CLOSES = "drift-monitor.closes"
"""Topic name of the close outputs: they go to the report sink (app.py), never to Kafka."""


class WindowsCodec:
    """Packs a partition's windows for the changelog. Never evicted: closing windows is what keeps it small."""

    def new(self) -> PartitionWindows:
        return PartitionWindows()

    def pack(self, state: PartitionWindows) -> bytes:
        return windows.pack(state)

    def unpack(self, packed: bytes) -> PartitionWindows:
        return windows.unpack(packed)

    def newest(self, state: PartitionWindows | bytes) -> int | None:
        return None


def state_store() -> KeyedStateStore[PartitionWindows]:
    return KeyedStateStore(WindowsCodec(), "drift-monitor", evict_after_ms=2**62)


class WindowProcessor:
    """Counts each prediction in its model version's window, in record order, then closes what the watermark
    passed; each close is one output record (windows.Close as JSON) for the report sink."""

    def __init__(
        self, rule: Windows, store: KeyedStateStore[PartitionWindows], decode: Callable[[bytes], dict[str, Any]]
    ) -> None:
        self._rule, self._store, self._decode = rule, store, decode

    def process(self, records: Sequence[ConsumerRecord], now_ms: int) -> BatchResult:
        result = BatchResult()
        parts = {p: self._store.state(p, KEY) for p in sorted(self._store.partitions)}
        done = windows.closed_until(parts)
        for record in records:
            part = parts[record.partition]
            if record.offset >= part.offset:
                self._one(record, part, done, result, now_ms)
                part.offset = record.offset + 1
            result.offsets[(record.topic, record.partition)] = record.offset + 1
        closes = self._rule.close(parts, now_ms)
        mark = windows.closed_until(parts)
        if mark is not None:
            WATERMARK_LAG.set(max(now_ms - mark, 0) / 1000)
        result.outputs = [OutRecord(CLOSES, c.to_json(), f"{c.model_name}/{c.model_version}".encode()) for c in closes]
        return result

    def _one(
        self, record: ConsumerRecord, part: PartitionWindows, done: int | None, result: BatchResult, now_ms: int
    ) -> None:
        try:
            p = self._decode(record.value)
        except SerializationError as exc:
            PREDICTIONS.labels("rejected").inc()
            result.rejections.append(Rejection(record, f"undecodable: {exc.reason}", "SerializationError"))
            return
        if reason := _unnamed(p) or windows.unwindowable(p["event_time"], now_ms):
            PREDICTIONS.labels("rejected").inc()
            result.rejections.append(Rejection(record, f"invalid: {reason}"))
            return
        late = self._rule.add(part, done, (p["model_name"], p["model_version"]), p["event_time"])
        PREDICTIONS.labels("late" if late else "counted").inc()


def _unnamed(prediction: dict[str, Any]) -> str | None:
    """Why a prediction's model name or version cannot name a report: they are ids (PostgreSQL refuses a NUL in
    text); the version may be empty, as fallback scores carry it."""
    named = {"model_name": prediction["model_name"]}
    if prediction["model_version"]:
        named["model_version"] = prediction["model_version"]
    return next((str(v) for f, value in named.items() if (v := check_id(value, f))), None)
