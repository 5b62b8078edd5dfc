"""The log context of one consumed batch: which topic, partitions and offsets a line is about."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def batch_context(records: Sequence[Any]) -> dict[str, str]:
    """`{"topic": "t", "offsets": "0:10-19,3:7-7"}`: partition:first-last for each partition in the batch."""
    spans: dict[tuple[str, int], list[int]] = {}
    for record in records:
        span = spans.setdefault((record.topic, record.partition), [record.offset, record.offset])
        span[0], span[1] = min(span[0], record.offset), max(span[1], record.offset)
    topics = sorted({topic for topic, _ in spans})
    offsets = ",".join(f"{p}:{lo}-{hi}" for (_, p), (lo, hi) in sorted(spans.items()))
    return {"topic": ",".join(topics), "offsets": offsets}
