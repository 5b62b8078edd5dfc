"""The log context of one consumed batch: which topic partitions and offsets a line is about."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def offset_ranges(records: Sequence[Any]) -> str:
    """First and last offset per partition, enough to find the records again: "topic[0]:100-199 topic[3]:7-80"."""
    ranges: dict[tuple[str, int], tuple[int, int]] = {}
    for r in records:
        low, high = ranges.get((r.topic, r.partition), (r.offset, r.offset))
        ranges[(r.topic, r.partition)] = (min(low, r.offset), max(high, r.offset))
    return " ".join(f"{t}[{p}]:{low}-{high}" for (t, p), (low, high) in sorted(ranges.items()))
