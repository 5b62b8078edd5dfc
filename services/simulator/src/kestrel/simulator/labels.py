"""Delayed ground truth: labels wait in time buckets (numpy columns, not dicts) until they are due."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BUCKET_MS = 250
"""Release granularity: a label leaves at most this long after its label_time."""


@dataclass(frozen=True)
class DueLabels:
    """Labels ready to publish, sorted by label_time; `seq` identifies the event (see Generator.event_id)."""

    seq: np.ndarray
    card: np.ndarray
    label: np.ndarray
    label_time: np.ndarray

    def __len__(self) -> int:
        return len(self.seq)


_EMPTY = DueLabels(*(np.empty(0, dtype=np.int64) for _ in range(4)))


class LabelQueue:
    """Holds labels between their event and their label_time.

    At 50,000 events/s with 30 s delays a million labels wait at once; four int64 columns per
    bucket keep that to tens of MB, where a dict per label would take hundreds.
    """

    def __init__(self) -> None:
        self._buckets: dict[int, list[np.ndarray]] = {}
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def push(self, seq: np.ndarray, card: np.ndarray, label: np.ndarray, label_time: np.ndarray) -> None:
        if len(seq) == 0:
            return
        # One 4-row block per push, sliced once per bucket: far cheaper than slicing four columns.
        block = np.stack([seq, card, label, label_time])
        block = block[:, np.argsort(label_time, kind="stable")]
        keys, starts = np.unique(block[3] // BUCKET_MS, return_index=True)
        bounds = [*starts.tolist(), block.shape[1]]
        buckets = self._buckets
        for i, key in enumerate(keys.tolist()):
            buckets.setdefault(key, []).append(block[:, bounds[i] : bounds[i + 1]])
        self._size += len(seq)

    def pop_due(self, t_ms: int) -> DueLabels:
        """Every label whose bucket ended by t_ms (so label_time < t_ms), oldest first."""
        limit = t_ms // BUCKET_MS
        return self._take([key for key in self._buckets if key < limit])

    def pop_all(self) -> DueLabels:
        """Everything still waiting, for the end of a run."""
        return self._take(list(self._buckets))

    def _take(self, keys: list[int]) -> DueLabels:
        blocks = [block for key in sorted(keys) for block in self._buckets.pop(key)]
        if not blocks:
            return _EMPTY
        merged = np.concatenate(blocks, axis=1)
        merged = merged[:, np.argsort(merged[3], kind="stable")]
        self._size -= merged.shape[1]
        return DueLabels(*merged)
