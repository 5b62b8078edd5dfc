"""Unit tests of the delayed-label queue."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from kestrel.simulator.labels import BUCKET_MS, LabelQueue


def push(queue: LabelQueue, times: list[int]) -> None:
    n = len(times)
    queue.push(np.arange(n), np.arange(n), np.zeros(n, dtype=np.int64), np.array(times, dtype=np.int64))


@given(st.lists(st.integers(0, 100_000), max_size=200), st.integers(0, 100_000))
def test_pop_due_releases_only_what_is_due_in_time_order(times, now):
    queue = LabelQueue()
    push(queue, times)
    due = queue.pop_due(now)
    released = due.label_time.tolist()
    assert released == sorted(released)
    assert all(t < now for t in released)
    # Everything due more than one bucket ago has been released.
    assert sorted(released) == sorted(t for t in times if t < now - now % BUCKET_MS)
    assert len(queue) == len(times) - len(released)
    assert sorted(queue.pop_all().label_time.tolist() + released) == sorted(times)
    assert len(queue) == 0


def test_columns_stay_aligned():
    queue = LabelQueue()
    queue.push(np.array([10, 11, 12]), np.array([5, 6, 7]), np.array([1, 0, 1]), np.array([3_000, 1_000, 2_000]))
    due = queue.pop_all()
    assert due.seq.tolist() == [11, 12, 10]
    assert due.card.tolist() == [6, 7, 5]
    assert due.label.tolist() == [0, 1, 1]
