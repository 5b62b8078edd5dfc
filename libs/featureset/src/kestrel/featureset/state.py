"""Per-entity streaming state and the feature math over it: pure, synchronous, no I/O.

Semantics (docs/features.md): an event at time t of entity e sees e's events that arrived before it
(in arrival order: offset order within the partition) with event_time in (t - W, t], plus itself.
Events more than `allowed_lateness_s` behind e's newest event time are rejected as late. An event whose
id is that of an event e's state still holds is a duplicate (a retry): it changes nothing and has no vector.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from hashlib import blake2b
from typing import Any

from kestrel.featureset.definition import EVENT_ID, FeatureSet
from kestrel.featureset.plan import compile_values, compile_vector

Event = Mapping[str, Any]

_MS = 1000


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def id_hash(event_id: str) -> int:
    """The 64-bit hash an event id is kept as; never 0, which stands for an id not known (an older changelog).

    Two ids of one entity's retained events collide with odds of about n^2 / 2^65 (4.6e-13 at 4096 events).
    """
    return int.from_bytes(blake2b(event_id.encode(), digest_size=8).digest(), "little", signed=True) or 1


class EntityState:
    """The entity's recent events, sorted by event time (ties in arrival order), as parallel columns."""

    __slots__ = ("watermark", "offset", "times", "ids", "numeric", "categorical")

    def __init__(self, n_numeric: int, n_categorical: int) -> None:
        self.watermark: int | None = None
        """Newest event time seen (ms)."""
        self.offset = -1
        """Source offset of the last event applied: a replay at or below it is skipped, not double-counted."""
        self.times: list[int] = []
        self.ids: list[int] = []
        """id_hash of each event's id, beside its time: a retry of a held event is recognised by it."""
        self.numeric: list[list[float]] = [[] for _ in range(n_numeric)]
        self.categorical: list[list[str]] = [[] for _ in range(n_categorical)]

    def __len__(self) -> int:
        return len(self.times)


class Duplicate:
    """An event whose id the entity's state already holds: applied once, so it changes nothing."""

    __slots__ = ()


DUPLICATE = Duplicate()


@dataclass(frozen=True, slots=True)
class Late:
    """An event too far behind its entity's newest event time to update any window."""

    event_time: int
    watermark: int
    allowed_lateness_ms: int

    @property
    def reason(self) -> str:
        behind = self.watermark - self.event_time
        return (
            f"late event: {behind} ms behind the entity's newest event time {self.watermark}, "
            f"allowed lateness {self.allowed_lateness_ms} ms"
        )


class FeatureComputer:
    """A feature set compiled for the stream: which columns the state keeps and how each feature reads them."""

    def __init__(self, feature_set: FeatureSet) -> None:
        self.feature_set = feature_set
        fs = feature_set
        self.numeric_sources = fs.numeric_sources
        self.categorical_sources = fs.categorical_sources
        self.lateness_ms = fs.allowed_lateness_s * _MS
        self.retention_ms = (fs.max_window_s + fs.allowed_lateness_s) * _MS
        self._time, self._cap = fs.time, fs.max_events_per_entity
        self._defaults = fs.defaults
        self._fill, self.source = compile_vector(fs.features, self.numeric_sources, self.categorical_sources)
        self._values = compile_values(self.numeric_sources, self.categorical_sources)
        self.truncated = 0
        """Events forgotten because an entity exceeded max_events_per_entity (windows undercount then)."""

    def new_state(self) -> EntityState:
        return EntityState(len(self.numeric_sources), len(self.categorical_sources))

    def invalid(self, event: Event) -> str | None:
        """Why an event cannot be used (a missing field, a non-finite number, a non-integer time), or None."""
        if not isinstance(event.get(self._time), int):
            return f"{self._time} must be integer milliseconds"
        bad = [s for s in self.numeric_sources if not _finite(event.get(s))]
        bad += [s for s in self.categorical_sources if not isinstance(event.get(s), str)]
        return f"missing, non-finite or mistyped {', '.join(bad)}" if bad else None

    def update(
        self, state: EntityState, event: Event, offset: int | None = None
    ) -> list[float] | Late | Duplicate | None:
        """Apply one event: its feature vector, a Late rejection, DUPLICATE, or None for a replay of an offset.

        A duplicate is checked before lateness: a retry whose original is held was applied, not lost.
        """
        if offset is not None:
            if offset <= state.offset:
                return None
            state.offset = offset
        h = id_hash(event[EVENT_ID])
        if h in state.ids:
            return DUPLICATE
        t = event[self._time]
        wm = state.watermark
        if wm is not None and t < wm - self.lateness_ms:
            return Late(t, wm, self.lateness_ms)
        end = bisect_right(state.times, t)
        numeric, categorical = self._values(event)
        vector = self._defaults.copy()
        self._fill(state.times, state.numeric, state.categorical, t, end, numeric, categorical, vector)
        self._insert(state, t, h, end, numeric, categorical)
        return vector

    def features_at(self, state: EntityState, event: Event) -> list[float]:
        """The event's vector over the state as it is, every held event counting as arrived before it; no
        lateness check and no change to the state. What Predict serves from the online store's event log."""
        t, end = event[self._time], bisect_right(state.times, event[self._time])
        numeric, categorical = self._values(event)
        vector = self._defaults.copy()
        self._fill(state.times, state.numeric, state.categorical, t, end, numeric, categorical, vector)
        return vector

    def state_from(self, times: list[int], numeric: list[list[float]], categorical: list[list[str]]) -> EntityState:
        """A state holding these events, given column by column (times ascending; numeric and categorical
        columns in the sorted source order of `numeric_sources` and `categorical_sources`). Their ids are
        not known (0): enough for `features_at`. The lists are taken, not copied."""
        state = self.new_state()
        if not times:
            return state
        if len(numeric) != len(state.numeric) or len(categorical) != len(state.categorical):
            raise ValueError(
                f"a log of {len(numeric)} numeric and {len(categorical)} categorical sources; the feature set "
                f"reads {len(state.numeric)} and {len(state.categorical)}"
            )
        state.times, state.ids, state.numeric, state.categorical = times, [0] * len(times), numeric, categorical
        state.watermark = max(times)
        return state

    def _insert(
        self, state: EntityState, t: int, h: int, at: int, numeric: list[float], categorical: list[str]
    ) -> None:
        times = state.times
        times.insert(at, t)
        state.ids.insert(at, h)
        for numbers, x in zip(state.numeric, numeric):
            numbers.insert(at, x)
        for labels, label in zip(state.categorical, categorical):
            labels.insert(at, label)
        wm = state.watermark
        if wm is None or t > wm:
            state.watermark = wm = t
        # Events at or before watermark - (max window + lateness) can never fall in a future window.
        horizon = wm - self.retention_ms
        drop = bisect_right(times, horizon) if times[0] <= horizon else 0
        if len(times) - drop > self._cap:
            self.truncated += len(times) - drop - self._cap
            drop = len(times) - self._cap
        if drop:
            del times[:drop]
            del state.ids[:drop]
            for numbers in state.numeric:
                del numbers[:drop]
            for labels in state.categorical:
                del labels[:drop]
