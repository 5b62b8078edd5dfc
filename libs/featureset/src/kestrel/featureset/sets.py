"""Set features (distinct, is_new) at request time, from the online store's per-card last-seen times."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from kestrel.featureset.definition import CATEGORICAL_SOURCE, FeatureSet


def _cols(indices: list[int]) -> np.ndarray:
    return np.array(indices, dtype=np.intp)


class SetAnswers(Protocol):
    """What the online store's categorical sets say about each request (kestrel.online_store.SetAnswer fits).
    Columns follow FeatureSet.set_windows_ms: one per source, and one per (source, window) pair for counts."""

    @property
    def last_seen(self) -> np.ndarray:
        """int64 (n, S): newest event time the request's value of the source was seen at; -1: never."""

    @property
    def counts(self) -> np.ndarray:
        """int64 (n, P): how many values of the source were last seen after t - window."""

    @property
    def dropped(self) -> np.ndarray:
        """int64 (n, S): newest last-seen time of a value the store's cap dropped; -1: none."""

    @property
    def complete_from(self) -> np.ndarray:
        """int64 (n,): the sets hold every event after this time (0: all of them; int64 max: none to trust)."""


@dataclass(frozen=True)
class SetPlan:
    """The set features' columns, and per column its source, its (source, window) pair and its window."""

    cols: np.ndarray
    source: np.ndarray
    pair: np.ndarray
    window_ms: np.ndarray
    is_new: np.ndarray

    @classmethod
    def of(cls, fs: FeatureSet) -> SetPlan:
        """The plan of a feature set's distinct and is_new features (none: empty columns)."""
        windows = fs.set_windows_ms
        sources = list(windows)
        pairs = [(source, w) for source in sources for w in windows[source]]
        specs = [(i, f) for i, f in enumerate(fs.features) if f.aggregation in CATEGORICAL_SOURCE]
        return cls(
            _cols([i for i, _ in specs]),
            _cols([sources.index(f.source) for _, f in specs]),
            _cols([pairs.index((f.source, (f.window_s or 0) * 1000)) for _, f in specs]),
            np.array([(f.window_s or 0) * 1000 for _, f in specs], dtype=np.int64),
            np.array([f.aggregation == "is_new" for _, f in specs]),
        )

    def features(self, sets: SetAnswers, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The set columns, and where the sets can answer them (their window starts where the sets are
        complete; elsewhere the caller keeps its fallback). distinct = values last seen in the window, plus
        one if the request's own is not among them; is_new = the request's value was not seen in the window.
        A value occurred in (t - W, t] iff its last-seen time is after t - W, exactly so when no stored event
        is after t."""
        start = t[:, None] - self.window_ms
        inside = np.asarray(sets.last_seen)[:, self.source] > start
        distinct = np.asarray(sets.counts)[:, self.pair] + ~inside
        usable = np.asarray(sets.complete_from)[:, None] <= start
        return np.where(self.is_new, ~inside, distinct).astype(np.float64), usable

    def truncated(self, sets: SetAnswers, t: np.ndarray) -> np.ndarray:
        """bool (n,): a value the store's cap dropped could be inside some set feature's window."""
        dropped = np.asarray(sets.dropped)[:, self.source]
        return ((dropped >= 0) & (dropped > t[:, None] - self.window_ms)).any(axis=1)
