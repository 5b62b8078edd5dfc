"""Platform signals computed from Kafka offsets, pure: consumer lag per group and dead-letter rate per topic."""

from __future__ import annotations

from collections.abc import Mapping

from kestrel.alerting.rules import Signal, platform_signal

Offsets = Mapping[tuple[str, int], int]
"""(topic, partition) -> offset"""


def lag_signals(committed: Mapping[str, Offsets], ends: Offsets, at_ms: int) -> list[Signal]:
    """One signal per consumer group: its total lag over the partitions it has committed offsets for."""
    out = []
    for group, offsets in sorted(committed.items()):
        lag = sum(max(0, ends.get(tp, offset) - offset) for tp, offset in offsets.items())
        out.append(platform_signal("consumer_lag", {"group": group}, float(lag), at_ms))
    return out


def dead_letter_signals(before: Offsets, after: Offsets, elapsed_s: float, prefix: str, at_ms: int) -> list[Signal]:
    """One signal per dead-letter topic seen in both samples: records per second written in between."""
    totals: dict[str, int] = {}
    for (topic, partition), end in after.items():
        if (topic, partition) in before:
            totals[topic] = totals.get(topic, 0) + max(0, end - before[topic, partition])
    return [
        platform_signal(
            "dlq_rate", {"topic": topic.removeprefix(prefix)}, added / elapsed_s if elapsed_s > 0 else 0.0, at_ms
        )
        for topic, added in sorted(totals.items())
    ]
