"""The processor over records: replays after a restart change nothing, undecodable records are dead-lettered."""

from __future__ import annotations

from typing import Any

from aiokafka import ConsumerRecord

from kestrel.common.errors import SerializationError
from kestrel.drift_monitor.processor import CLOSES, KEY, WindowProcessor, state_store
from kestrel.drift_monitor.windows import Close, Windows


def record(partition: int, offset: int, value: Any) -> ConsumerRecord:
    return ConsumerRecord("preds", partition, offset, 0, 0, b"k", value, None, 1, 1, [])


def decode(value: Any) -> dict[str, Any]:
    if value is None:
        raise SerializationError("bad bytes")
    return {"model_name": "fraud", "model_version": "1", "event_time": value}


def processor(partitions: tuple[int, ...] = (0, 1)) -> WindowProcessor:
    store = state_store()
    for p in partitions:
        store.load(p, {})
    return WindowProcessor(Windows(1000, 100, 10_000), store, decode)


def test_closes_are_outputs_for_the_sink_with_the_offsets_applied() -> None:
    proc = processor()
    proc.process([record(0, 0, 10), record(1, 0, 20), record(1, 1, 900)], now_ms=5)
    result = proc.process([record(0, 1, 1200), record(1, 2, 1300)], now_ms=7)
    [out] = result.outputs
    assert out.topic == CLOSES and out.key == b"fraud/1"
    assert Close.from_json(out.value) == Close("fraud", "1", 0, 1000, 3, 0, {0: 2, 1: 3}, 7)
    assert result.offsets == {("preds", 0): 2, ("preds", 1): 3}


def test_records_the_state_already_holds_change_nothing() -> None:
    proc = processor((0,))
    proc.process([record(0, 0, 10), record(0, 1, 20)], now_ms=0)
    again = proc.process([record(0, 0, 10), record(0, 1, 20), record(0, 2, 1200)], now_ms=0)
    assert Close.from_json(again.outputs[0].value).count == 2


def test_undecodable_records_are_rejected_and_skipped() -> None:
    proc = processor()
    result = proc.process([record(0, 0, None), record(0, 1, 10)], now_ms=0)
    assert [r.record.offset for r in result.rejections] == [0]
    assert proc._store.state(0, KEY).offset == 2


def test_event_times_no_window_can_hold_are_rejected_and_harm_no_later_prediction() -> None:
    """A far-future time would close every open window (each later prediction late); a time before the epoch opens
    a window no report can date (found by tests/fuzz)."""
    proc = processor((0,))
    result = proc.process([record(0, i, t) for i, t in enumerate([2**63 - 1, -(2**63), 1_000_000, 10])], now_ms=0)
    assert [r.record.offset for r in result.rejections] == [0, 1, 2]
    assert all("event_time" in r.reason for r in result.rejections)
    assert proc._store.state(0, KEY).newest == 10


def test_a_model_name_or_version_no_report_can_name_is_rejected() -> None:
    """A NUL in the model name reached PostgreSQL in the report, which refused it; the sink retried without end
    and the loop stalled (found by tests/fuzz). Names are ids: 1-128 printable ASCII characters (a fallback
    score's version is empty)."""
    store = state_store()
    store.load(0, {})
    proc = WindowProcessor(
        Windows(1000, 100, 10_000), store, lambda v: {"model_name": v[0], "model_version": v[1], "event_time": 10}
    )
    names = [("fr\x00aud", "1"), ("", "1"), ("fraud", "\u202e1"), ("fraud", "1"), ("fallback", "")]
    result = proc.process([record(0, i, v) for i, v in enumerate(names)], now_ms=0)
    assert [r.record.offset for r in result.rejections] == [0, 1, 2]
    assert [r.reason.split(":")[1].strip() for r in result.rejections] == ["model_name", "model_name", "model_version"]
    assert set(proc._store.state(0, KEY).versions) == {("fraud", "1"), ("fallback", "")}
