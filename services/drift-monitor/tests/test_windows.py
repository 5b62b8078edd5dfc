"""Window rules: counting, the watermark over partitions, closing, lateness, restart from packed state."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kestrel.drift_monitor import windows
from kestrel.drift_monitor.windows import Close, PartitionWindows, Windows

RULE = Windows(size_ms=1000, lateness_ms=100, idle_ms=3000)
V1, V2 = ("fraud", "1"), ("fraud", "2")


def feed(
    parts: dict[int, PartitionWindows], events: list[tuple[int, tuple[str, str], int]], rule: Windows = RULE
) -> list[Close]:
    """(partition, version, event_time) one at a time, closing after each as the processor does per batch."""
    closes = []
    for p, version, t in events:
        part = parts.setdefault(p, PartitionWindows())
        rule.add(part, windows.closed_until(parts), version, t)
        part.offset += 1
        closes += rule.close(parts, now_ms=0)
    return closes


def test_windows_are_tumbling_and_aligned_on_the_epoch() -> None:
    assert [RULE.start(t) for t in (0, 999, 1000, 2500)] == [0, 0, 1000, 2000]


def test_a_window_closes_once_the_watermark_passes_its_end_plus_lateness() -> None:
    parts: dict[int, PartitionWindows] = {}
    assert feed(parts, [(0, V1, 10), (0, V1, 900), (0, V1, 1099)]) == []
    [close] = feed(parts, [(0, V1, 1100)])
    assert (close.start, close.end, close.count, close.late) == (0, 1000, 2, 0)
    assert parts[0].versions[V1].open == {1000: 2}


def test_the_slowest_partition_holds_the_watermark_back() -> None:
    parts: dict[int, PartitionWindows] = {}
    assert feed(parts, [(0, V1, 10), (1, V1, 20), (0, V1, 2500)]) == []
    [close] = feed(parts, [(1, V1, 1100)])
    assert close.count == 2  # both partitions' predictions of the window, in one close
    assert close.offsets == {0: 2, 1: 2}


def test_a_partition_that_saw_nothing_holds_it_back_by_idle_ms_only() -> None:
    parts = {3: PartitionWindows()}
    assert feed(parts, [(0, V1, 10), (0, V1, 1200), (0, V1, 4099)]) == []
    assert [c.start for c in feed(parts, [(0, V1, 4100)])] == [0]


def test_a_partition_far_behind_holds_it_back_by_idle_ms_only() -> None:
    parts: dict[int, PartitionWindows] = {}
    assert feed(parts, [(1, V1, 0), (0, V1, 10), (0, V1, 4099)]) == []
    [close] = feed(parts, [(0, V1, 4100)])
    assert close.count == 2


def test_each_version_gets_its_own_closes() -> None:
    closes = feed({}, [(0, V1, 10), (0, V2, 20), (0, V2, 30), (0, V1, 2200)])
    assert [(c.model_version, c.start, c.count) for c in closes] == [("1", 0, 1), ("2", 0, 2)]


def test_late_predictions_are_counted_not_merged_and_reported_with_the_next_close() -> None:
    parts: dict[int, PartitionWindows] = {}
    feed(parts, [(0, V1, 10), (0, V1, 1100)])  # window 0 closed
    assert feed(parts, [(0, V1, 500), (1, V1, 999)]) == []
    assert parts[0].versions[V1].late == 1 and parts[1].versions[V1].late == 1
    assert 0 not in parts[0].versions[V1].open
    [close] = feed(parts, [(0, V1, 2100), (1, V1, 2100)])
    assert (close.start, close.count, close.late) == (1000, 1, 2)
    assert all(part.versions[V1].late == 0 for part in parts.values())


def test_late_predictions_of_another_version_wait_for_that_versions_close() -> None:
    parts: dict[int, PartitionWindows] = {}
    feed(parts, [(0, V1, 10), (0, V1, 1100), (0, V2, 50)])
    closes = feed(parts, [(0, V1, 2100)])
    assert [(c.model_version, c.late) for c in closes] == [("1", 0)]
    assert parts[0].versions[V2].late == 1


def test_closed_windows_are_forgotten() -> None:
    parts: dict[int, PartitionWindows] = {}
    feed(parts, [(0, V1, 10), (0, V2, 10), (0, V1, 5000)])
    assert V2 not in parts[0].versions and parts[0].versions[V1].open == {5000: 1}


def test_a_close_round_trips_as_json() -> None:
    close = Close("fraud", "1", 0, 1000, 5, 2, {0: 3, 5: 7}, 123)
    assert Close.from_json(close.to_json()) == close


events = st.lists(
    st.tuples(st.integers(0, 2), st.sampled_from([V1, V2]), st.integers(0, 8000)), min_size=1, max_size=60
)


@settings(max_examples=150, deadline=None)
@given(events, st.data())
def test_a_restart_from_packed_state_closes_the_same_windows(evs: list, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(evs)))
    straight = feed({}, evs)
    parts: dict[int, PartitionWindows] = {}
    before = feed(parts, evs[:cut])
    restored = {p: windows.unpack(windows.pack(part)) for p, part in parts.items()}
    assert restored == parts
    assert before + feed(restored, evs[cut:]) == straight


@settings(max_examples=150, deadline=None)
@given(events)
def test_every_prediction_is_counted_once_in_a_close_late_or_still_open(evs: list) -> None:
    parts: dict[int, PartitionWindows] = {}
    closes = feed(parts, evs)
    held = sum(sum(w.open.values()) + w.late for part in parts.values() for w in part.versions.values())
    assert sum(c.count + c.late for c in closes) + held == len(evs)
    starts = [(c.model_version, c.start) for c in closes]
    assert len(starts) == len(set(starts))  # each window closes once


PER_5 = Windows(size_ms=1000, lateness_ms=100, idle_ms=3000, min_count=5)


def test_with_a_minimum_count_closed_windows_are_reported_together_once_they_hold_it() -> None:
    parts: dict[int, PartitionWindows] = {}
    first = [(0, V1, t) for t in (10, 20, 1010, 1020, 3500)]
    assert feed(parts, first, PER_5) == []  # windows 0 and 1000 closed with 2 + 2 predictions: not yet 5
    assert feed(parts, [(0, V1, 800)], PER_5) == []  # window 0 is closed: late, not added
    [close] = feed(parts, [(0, V1, 4100)], PER_5)  # window 3000 closes: 2 + 2 + 1 = 5
    assert (close.start, close.end, close.count, close.late) == (0, 4000, 5, 1)
    assert parts[0].versions[V1].open == {4000: 1}


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=10), st.integers(1, 12))
def test_merged_reports_do_not_depend_on_how_the_closes_fell(counts: list[int], n: int) -> None:
    """Windows closed one by one or all at once make the same reports (a replay repeats its report ids)."""
    rule = Windows(size_ms=1000, lateness_ms=0, idle_ms=10**9, min_count=n)
    evs = [(0, V1, 1000 * k + i) for k, c in enumerate(counts) for i in range(c)]
    end = [(0, V1, 1000 * len(counts))]
    one_by_one = [(c.start, c.end, c.count) for c in feed({}, evs + end, rule)]
    parts: dict[int, PartitionWindows] = {}
    for p, version, t in evs + end:
        rule.add(parts.setdefault(p, PartitionWindows()), None, version, t)
    at_once = [(c.start, c.end, c.count) for c in rule.close(parts, now_ms=0)]
    assert one_by_one == at_once
    assert all(count >= n for _, _, count in at_once)
    assert sum(count for _, _, count in at_once) + sum(parts[0].versions[V1].open.values()) == sum(counts) + 1


@settings(max_examples=100, deadline=None)
@given(events, st.data())
def test_merged_windows_survive_a_restart_from_packed_state(evs: list, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(evs)))
    straight = feed({}, evs, PER_5)
    parts: dict[int, PartitionWindows] = {}
    before = feed(parts, evs[:cut], PER_5)
    restored = {p: windows.unpack(windows.pack(part)) for p, part in parts.items()}
    assert before + feed(restored, evs[cut:], PER_5) == straight
