"""The events processor: each window's column counts kept beside the window rule's, handed over with its close."""

from __future__ import annotations

from typing import Any

from aiokafka import ConsumerRecord

from kestrel.common.errors import SerializationError
from kestrel.drift_monitor.event_windows import (
    CLOSES,
    KEY,
    EventClose,
    EventPartition,
    EventWindowProcessor,
    event_store,
    pack,
    unpack,
)
from kestrel.drift_monitor.windows import Windows


def record(partition: int, offset: int, value: Any) -> ConsumerRecord:
    return ConsumerRecord("events", partition, offset, 0, 0, b"k", value, None, 1, 1, [])


def decode(value: Any) -> dict[str, Any]:
    """Values are (event time, channel); None is undecodable, a missing channel is a malformed event."""
    if value is None:
        raise SerializationError("bad bytes")
    event_time, channel = value
    event = {"event_time": event_time, "country": "DE", "merchant_category": "5411", "currency": "EUR", "amount": 9.5}
    return event | ({"channel": channel} if channel else {})


def processor(partitions: tuple[int, ...] = (0, 1), min_count: int = 1) -> EventWindowProcessor:
    store = event_store()
    for p in partitions:
        store.load(p, {})
    return EventWindowProcessor(Windows(1000, 100, 10_000, min_count), store, decode)


def test_a_close_carries_its_windows_counts_summed_over_partitions() -> None:
    proc = processor()
    proc.process([record(0, 0, (10, "pos")), record(1, 0, (20, "pos")), record(1, 1, (900, "ecommerce"))], now_ms=5)
    result = proc.process([record(0, 1, (1200, "atm")), record(1, 2, (1300, "pos"))], now_ms=7)
    [out] = result.outputs
    assert out.topic == CLOSES and out.key == b"events"
    found = EventClose.from_json(out.value)
    assert (found.close.start, found.close.end, found.close.count, found.close.offsets) == (0, 1000, 3, {0: 2, 1: 3})
    assert found.counts["channel"] == {"pos": 2, "ecommerce": 1}
    assert found.counts["amount"] == {"195": 3} and found.counts["country"] == {"DE": 3}
    assert all(0 not in proc._store.state(p, KEY).counts for p in (0, 1))  # handed over, so forgotten


def test_late_events_are_counted_late_never_added_and_replays_change_nothing() -> None:
    proc = processor((0,))
    proc.process([record(0, 0, (10, "pos")), record(0, 1, (1200, "pos"))], now_ms=0)
    again = proc.process([record(0, 0, (10, "pos")), record(0, 2, (50, "atm")), record(0, 3, (2500, "pos"))], 0)
    [close] = [EventClose.from_json(o.value) for o in again.outputs]
    assert (close.close.start, close.close.late, close.counts["channel"]) == (1000, 1, {"pos": 1})


def test_merged_windows_hand_over_every_windows_counts() -> None:
    proc = processor((0,), min_count=3)
    held = proc.process([record(0, i, (t, "pos")) for i, t in enumerate((10, 1100, 2100))], now_ms=0)
    assert held.outputs == [] and set(proc._store.state(0, KEY).counts) == {0, 1000, 2000}
    result = proc.process([record(0, 3, (3500, "atm"))], now_ms=0)
    [close] = [EventClose.from_json(o.value) for o in result.outputs]
    assert (close.close.start, close.close.end, close.counts["channel"]) == (0, 3000, {"pos": 3})
    assert set(proc._store.state(0, KEY).counts) == {3000}


def test_undecodable_and_malformed_events_are_rejected_and_skipped() -> None:
    proc = processor()
    result = proc.process([record(0, 0, None), record(0, 1, (10, "")), record(0, 2, (10, "pos"))], now_ms=0)
    assert [r.record.offset for r in result.rejections] == [0, 1]
    state = proc._store.state(0, KEY)
    assert state.windows.offset == 3 and state.counts[0]["channel"] == {"pos": 1}


def test_the_state_round_trips_through_the_changelog_codec() -> None:
    proc = processor((0,))
    proc.process([record(0, 0, (10, "pos")), record(0, 1, (2000, "atm"))], now_ms=0)
    state = proc._store.state(0, KEY)
    assert unpack(pack(state)) == state and unpack(pack(EventPartition())) == EventPartition()


def test_event_times_no_window_can_hold_are_rejected_and_harm_no_later_event() -> None:
    """One event stamped far in the future would carry the watermark past every open window, so every later event
    would be late; one before the epoch opens a window no report can date (found by tests/fuzz)."""
    proc = processor((0,))
    bad = [(2**63 - 1, "pos"), (-(2**63), "pos"), (1_000_000, "pos")]  # the last: 1000 s ahead of now
    result = proc.process([record(0, i, v) for i, v in enumerate([*bad, (10, "pos")])], now_ms=0)
    assert [r.record.offset for r in result.rejections] == [0, 1, 2]
    assert all("event_time" in r.reason for r in result.rejections)
    state = proc._store.state(0, KEY)
    assert state.windows.newest == 10 and state.counts[0]["channel"] == {"pos": 1}


def test_an_infinite_amount_is_rejected_not_raised() -> None:
    """Its amount bucket is log10(inf): an OverflowError that ended the loop (found by tests/fuzz)."""
    store = event_store()
    store.load(0, {})
    proc = EventWindowProcessor(Windows(1000, 100, 10_000), store, lambda v: decode(v[:2]) | {"amount": v[2]})
    result = proc.process([record(0, 0, (10, "pos", float("inf"))), record(0, 1, (20, "pos", 9.5))], now_ms=0)
    assert [r.record.offset for r in result.rejections] == [0]
    assert proc._store.state(0, KEY).counts[0]["channel"] == {"pos": 1}
