"""Offline recomputation of a feature set with numpy, written independently of the stream's state.

Input is the events in arrival order (per entity; offset order within a partition keeps it). For every
event it builds the matrix of which earlier arrivals each event can see, then aggregates with array
operations; which events count at all (usable, not late, not a retry of a kept event) is one pass in
order. Quadratic in events per entity, which is fine for the parity test and modest backfills.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from kestrel.featureset.definition import (
    CATEGORICAL_SOURCE,
    EVENT_ID,
    FLAT_SPREAD,
    NUMERIC_SOURCE,
    FeatureSet,
    FeatureSpec,
)

_NEVER = -(2**63)
_ROWS = 1024
"""Events per block of the visibility matrix: bounds memory at rows x events-of-the-entity."""


def compute(events: Sequence[Mapping[str, Any]], feature_set: FeatureSet) -> list[list[float] | None]:
    """The feature vector of every event in order; None for events rejected (late or unusable) or duplicates."""
    out: list[list[float] | None] = [None] * len(events)
    for positions in _by_entity(events, feature_set):
        matrix, skipped = _entity(feature_set, [events[i] for i in positions])
        for row, skip, i in zip(matrix, skipped, positions):
            out[i] = None if skip else row.tolist()
    return out


def rejected(events: Sequence[Mapping[str, Any]], feature_set: FeatureSet) -> np.ndarray:
    """Which events the stream must reject: unusable fields, or too far behind the entity's newest time."""
    return _masks(events, feature_set)[0]


def duplicates(events: Sequence[Mapping[str, Any]], feature_set: FeatureSet) -> np.ndarray:
    """Which events the stream must drop as retries: same id as an earlier counted event still in reach.

    In reach: the entity's newest counted time when the retry arrives is less than max window + allowed
    lateness past the earlier event's time. (The stream's max_events_per_entity bound is not modelled,
    as for the windows.)
    """
    return _masks(events, feature_set)[1]


def _masks(events: Sequence[Mapping[str, Any]], fs: FeatureSet) -> tuple[np.ndarray, np.ndarray]:
    rejected, duplicate = np.zeros(len(events), dtype=bool), np.zeros(len(events), dtype=bool)
    for positions in _by_entity(events, fs):
        rejected[positions], duplicate[positions] = _skipped(fs, [events[i] for i in positions])
    return rejected, duplicate


def _by_entity(events: Sequence[Mapping[str, Any]], fs: FeatureSet) -> list[list[int]]:
    groups: dict[Any, list[int]] = defaultdict(list)
    for i, event in enumerate(events):
        groups[event[fs.entity]].append(i)
    return list(groups.values())


def _usable(fs: FeatureSet, event: Mapping[str, Any]) -> bool:
    """Integer time, finite numbers, strings where strings are read."""
    numbers = [event.get(f.source) for f in fs.features if f.aggregation in NUMERIC_SOURCE]
    texts = [event.get(f.source) for f in fs.features if f.aggregation in CATEGORICAL_SOURCE]
    return (
        isinstance(event.get(fs.time), int)
        and all(isinstance(x, (int, float)) and np.isfinite(x) for x in numbers)
        and all(isinstance(x, str) for x in texts)
    )


def _skipped(fs: FeatureSet, events: list[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """One entity's events in arrival order: (rejected: unusable or late, duplicate: a retry in reach)."""
    rejected, duplicate = np.zeros(len(events), dtype=bool), np.zeros(len(events), dtype=bool)
    lateness_ms, reach_ms = fs.allowed_lateness_s * 1000, (fs.max_window_s + fs.allowed_lateness_s) * 1000
    newest: int | None = None
    # Event id -> latest time of a counted event with it: if that one is out of reach, so are the others.
    counted: dict[Any, int] = {}
    for i, e in enumerate(events):
        if not _usable(fs, e):
            rejected[i] = True
        elif newest is not None and counted.get(e[EVENT_ID], _NEVER) > newest - reach_ms:
            duplicate[i] = True
        elif newest is not None and e[fs.time] < newest - lateness_ms:
            rejected[i] = True
        else:
            counted[e[EVENT_ID]] = max(counted.get(e[EVENT_ID], e[fs.time]), e[fs.time])
            newest = e[fs.time] if newest is None else max(newest, e[fs.time])
    return rejected, duplicate


def _entity(fs: FeatureSet, events: list[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Feature matrix (events x features) of one entity, and which rows were skipped (rejected or duplicate)."""
    rejected, duplicate = _skipped(fs, events)
    bad = rejected | duplicate
    events = [_placeholder(fs, e) if skip else e for e, skip in zip(events, bad)]
    t = np.array([e[fs.time] for e in events], dtype=np.int64)
    out = np.full((len(events), len(fs.features)), np.nan)
    for lo in range(0, len(events), _ROWS):
        rows = np.arange(lo, min(lo + _ROWS, len(events)))
        block = _Block(fs, events, t, bad, rows)
        out[rows] = np.column_stack([block.feature(f) for f in fs.features])
    return out, bad


def _placeholder(fs: FeatureSet, event: Mapping[str, Any]) -> Mapping[str, Any]:
    """A rejected event with harmless values, so columns stay numeric; it is masked out everywhere."""
    fixed: dict[str, Any] = {f.source: 0.0 for f in fs.features if f.aggregation in NUMERIC_SOURCE}
    fixed |= {f.source: "" for f in fs.features if f.aggregation in CATEGORICAL_SOURCE}
    return {**event, **fixed, fs.time: event[fs.time] if isinstance(event.get(fs.time), int) else 0}


class _Block:
    """Aggregates for a block of rows: visible[k, j] says event j is in event k's prior window."""

    def __init__(
        self, fs: FeatureSet, events: list[Mapping[str, Any]], t: np.ndarray, bad: np.ndarray, rows: np.ndarray
    ) -> None:
        self.events, self.t, self.rows = events, t, rows
        cols = np.arange(len(events))
        self.earlier = (cols[None, :] < rows[:, None]) & ~bad[None, :] & (t[None, :] <= t[rows][:, None])
        self._columns: dict[str, np.ndarray] = {}

    def visible(self, window_s: int) -> np.ndarray:
        return self.earlier & (self.t[None, :] > (self.t[self.rows] - window_s * 1000)[:, None])

    def column(self, source: str, dtype: Any = np.float64) -> np.ndarray:
        if source not in self._columns:
            self._columns[source] = np.array([e[source] for e in self.events], dtype=dtype)
        return self._columns[source]

    def feature(self, f: FeatureSpec) -> np.ndarray:
        if f.aggregation == "hour_of_day":
            return ((self.t[self.rows] // 3_600_000) % 24).astype(np.float64)
        if f.aggregation == "value":
            return self.column(f.source)[self.rows]
        seen = self.visible(f.window_s or 0)
        if f.aggregation == "count":
            return seen.sum(axis=1) + 1.0
        if f.aggregation == "seconds_since_previous":
            latest = np.where(seen, self.t[None, :], np.iinfo(np.int64).min).max(axis=1)
            return np.where(seen.any(axis=1), (self.t[self.rows] - latest) / 1000.0, f.default)
        if f.aggregation in ("distinct", "is_new"):
            return _categorical(f, seen, self.column(f.source, object), self.rows)
        return _NUMERIC[f.aggregation](f, seen, self.column(f.source), self.rows)


def _with_self(seen: np.ndarray, x: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The window including the event itself: (mask with the diagonal set, count)."""
    mask = seen.copy()
    mask[np.arange(len(rows)), rows] = True
    return mask, mask.sum(axis=1)


def _sum(f: FeatureSpec, seen: np.ndarray, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    mask, _ = _with_self(seen, x, rows)
    return np.where(mask, x[None, :], 0.0).sum(axis=1)


def _mean(f: FeatureSpec, seen: np.ndarray, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    mask, n = _with_self(seen, x, rows)
    return np.where(mask, x[None, :], 0.0).sum(axis=1) / n


def _std(f: FeatureSpec, seen: np.ndarray, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    mask, n = _with_self(seen, x, rows)
    mean = np.where(mask, x[None, :], 0.0).sum(axis=1) / n
    return np.sqrt(np.where(mask, (x[None, :] - mean[:, None]) ** 2, 0.0).sum(axis=1) / n)


def _max(f: FeatureSpec, seen: np.ndarray, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    mask, _ = _with_self(seen, x, rows)
    return np.where(mask, x[None, :], -np.inf).max(axis=1)


def _min(f: FeatureSpec, seen: np.ndarray, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    mask, _ = _with_self(seen, x, rows)
    return np.where(mask, x[None, :], np.inf).min(axis=1)


def _prior(seen: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count, mean and population std of the visible earlier events (NaN where there are none)."""
    n = seen.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(seen, x[None, :], 0.0).sum(axis=1) / n
        std = np.sqrt(np.where(seen, (x[None, :] - mean[:, None]) ** 2, 0.0).sum(axis=1) / n)
    return n, mean, std


def _ratio_to_mean(f: FeatureSpec, seen: np.ndarray, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    n, mean, _ = _prior(seen, x)
    ok = (n > 0) & (mean != 0)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return np.where(ok, x[rows] / np.where(ok, mean, 1.0), f.default)


def _zscore(f: FeatureSpec, seen: np.ndarray, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    n, mean, std = _prior(seen, x)
    ok = (n >= 2) & (std > FLAT_SPREAD * np.maximum(np.abs(mean), 1.0))
    with np.errstate(invalid="ignore", over="ignore"):
        return np.where(ok, (x[rows] - mean) / np.where(ok, std, 1.0), f.default)


def _categorical(f: FeatureSpec, seen: np.ndarray, values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    _, codes = np.unique(values.astype(str), return_inverse=True)
    onehot = np.zeros((len(values), codes.max() + 1), dtype=np.int64)
    onehot[np.arange(len(values)), codes] = 1
    present = (seen.astype(np.int64) @ onehot) > 0
    new = ~present[np.arange(len(rows)), codes[rows]]
    if f.aggregation == "is_new":
        return new.astype(np.float64)
    return present.sum(axis=1) + new.astype(np.float64)


_NUMERIC = {
    "sum": _sum,
    "mean": _mean,
    "std": _std,
    "max": _max,
    "min": _min,
    "ratio_to_mean": _ratio_to_mean,
    "zscore": _zscore,
}
