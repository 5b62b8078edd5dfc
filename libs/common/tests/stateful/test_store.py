"""The keyed state store: lazy unpacking, change tracking, eviction against a bounded stream time."""

from __future__ import annotations

from kestrel.common.stateful import KeyedStateStore

from .conftest import T0, CountCodec

DAY = 86_400_000


def store_with(*keys: tuple[str, int]) -> KeyedStateStore:
    store = KeyedStateStore(CountCodec(), "test", evict_after_ms=DAY)
    store.load(0, {})
    for key, t in keys:
        store.state(0, key).newest = t
        store.saw(0, t)
    return store


def test_restored_bytes_unpack_on_first_use_and_only_touched_keys_are_changes() -> None:
    store = KeyedStateStore(CountCodec(), "test", evict_after_ms=DAY)
    store.load(2, {"a": b"3,7,None", "b": b"1,2,None"})
    assert store.take_changes() == [] and len(store) == 2
    assert store.state(2, "a").n == 3
    assert store.take_changes() == [(2, b"a", b"3,7,None")]


def test_keys_idle_for_evict_after_of_stream_time_are_evicted() -> None:
    store = store_with(("old", T0), ("new", T0 + DAY + 1))
    assert store.evict(now_ms=T0 + DAY + 1) == [(0, b"old", None)]
    assert [k for _, k, _ in store.take_changes()] == [b"new"]


def test_one_event_stamped_far_ahead_of_the_wall_clock_does_not_age_its_partition() -> None:
    now = T0 + 3_600_000
    store = store_with(("a", T0), ("b", T0 + 400_000), ("ahead", now + 365 * DAY))
    assert store.evict(now_ms=now) == []
    assert store.evict(now_ms=T0 + DAY + 500) == [(0, b"a", None)]  # wall clock + skew bounds the horizon
