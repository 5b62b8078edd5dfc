"""Offline recomputation of a feature set with numpy, written independently of the stream's state.

Input is the events in arrival order (per entity; offset order within a partition keeps it). For every
event it builds the matrix of which earlier arrivals each event can see, then aggregates with array
operations. Quadratic in events per entity, which is fine for the parity test and modest backfills.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from kestrel.featureset.definition import (
    CATEGORICAL_SOURCE,
    FLAT_SPREAD,
    NUMERIC_SOURCE,
    FeatureSet,
    FeatureSpec,
)

_ROWS = 1024
"""Events per block of the visibility matrix: bounds memory at rows x events-of-the-entity."""


def compute(events: Sequence[Mapping[str, Any]], feature_set: FeatureSet) -> list[list[float] | None]:
    """The feature vector of every event in order; None for events rejected (late or unusable)."""
    out: list[list[float] | None] = [None] * len(events)
    for positions in _by_entity(events, feature_set):
        matrix, bad = _entity(feature_set, [events[i] for i in positions])
        for row, skip, i in zip(matrix, bad, positions):
            out[i] = None if skip else row.tolist()
    return out


def rejected(events: Sequence[Mapping[str, Any]], feature_set: FeatureSet) -> np.ndarray:
    """Which events the stream must reject: unusable fields, or too far behind the entity's newest time."""
    rows = np.zeros(len(events), dtype=bool)
    for positions in _by_entity(events, feature_set):
        rows[positions] = _rejected(feature_set, [events[i] for i in positions])
    return rows


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


def _rejected(fs: FeatureSet, events: list[Mapping[str, Any]]) -> np.ndarray:
    usable = np.array([_usable(fs, e) for e in events], dtype=bool)
    t = np.array([e[fs.time] if ok else 0 for e, ok in zip(events, usable)], dtype=np.int64)
    # The newest time before each event counts only usable events; late ones are older anyway.
    newest = np.maximum.accumulate(np.where(usable, t, np.iinfo(np.int64).min))
    before = np.concatenate([[np.iinfo(np.int64).min], newest[:-1]])
    late = (before != np.iinfo(np.int64).min) & (t < before - fs.allowed_lateness_s * 1000)
    return late | ~usable


def _entity(fs: FeatureSet, events: list[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Feature matrix (events x features) of one entity, and which rows were rejected."""
    bad = _rejected(fs, events)
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
