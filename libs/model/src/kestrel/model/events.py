"""The raw event columns the drift monitor watches beside the model's inputs, counted per value; no I/O.

Counts, not rows: a window of events is a few hundred counters whatever its size, so the drift monitor keeps it in
its stream state, and the reference is the training events' counts. Amount is numeric; it is counted on a log grid
of AMOUNT_STEPS buckets per decade (1.2% wide), fine enough for KS and decile bins to be read off the counts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kestrel.model.errors import ModelError

CATEGORICAL = ("channel", "country", "merchant_category", "currency")
AMOUNT = "amount"
COLUMNS = (*CATEGORICAL, AMOUNT)
"""Monitored event columns, in report order."""
AMOUNT_STEPS = 200
"""Amount buckets per decade: bucket k holds 10**(k/200) <= amount < 10**((k+1)/200)."""
AMOUNT_FLOOR = -2 * AMOUNT_STEPS
"""Amounts below 0.01 (zero included) share the lowest bucket."""

Counts = dict[str, dict[str, int]]
"""Column -> value (amount: its bucket number, as a string) -> events."""


def amount_bucket(amount: float) -> int:
    if not amount > 0:
        return AMOUNT_FLOOR
    return max(math.floor(math.log10(amount) * AMOUNT_STEPS), AMOUNT_FLOOR)


def bucket_low(bucket: int) -> float:
    """The smallest amount of a bucket (for edges a report can show in amount units)."""
    return 0.0 if bucket <= AMOUNT_FLOOR else 10 ** (bucket / AMOUNT_STEPS)


def keys(event: Mapping[str, Any]) -> tuple[str, ...]:
    """The value each monitored column counts an event under, in COLUMNS order."""
    return (*(str(event[c]) for c in CATEGORICAL), str(amount_bucket(float(event[AMOUNT]))))


def add(counts: Counts, event_keys: Iterable[str]) -> None:
    for column, key in zip(COLUMNS, event_keys):
        per_value = counts.setdefault(column, {})
        per_value[key] = per_value.get(key, 0) + 1


def merge(into: Counts, other: Mapping[str, Mapping[str, int]]) -> None:
    for column, per_value in other.items():
        target = into.setdefault(column, {})
        for key, n in per_value.items():
            target[key] = target.get(key, 0) + n


@dataclass(frozen=True)
class EventReference:
    """The training events' monitored columns: how many, and how many per value of each column."""

    rows: int
    counts: Counts

    def __post_init__(self) -> None:
        if set(self.counts) != set(COLUMNS) or any(sum(c.values()) != self.rows for c in self.counts.values()):
            raise ModelError(f"event reference needs counts of {', '.join(COLUMNS)}, each summing to its rows")

    def to_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "amount_steps": AMOUNT_STEPS, "counts": self.counts}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> EventReference:
        if doc.get("amount_steps") != AMOUNT_STEPS:
            raise ModelError(f"event reference counted amounts on {doc.get('amount_steps')} steps, not {AMOUNT_STEPS}")
        return cls(int(doc["rows"]), {c: {k: int(n) for k, n in v.items()} for c, v in doc["counts"].items()})


def event_reference(events: Iterable[Mapping[str, Any]]) -> EventReference:
    """The reference of the events a model was trained on."""
    counts: Counts = {c: {} for c in COLUMNS}
    rows = 0
    for event in events:
        add(counts, keys(event))
        rows += 1
    return EventReference(rows, counts)
