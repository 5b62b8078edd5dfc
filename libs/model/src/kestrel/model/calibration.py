"""Score calibration: a monotone map from the model's score to P(fraud), fitted by isotonic regression."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from kestrel.model.errors import ModelError


@dataclass(frozen=True)
class Calibration:
    """P(fraud | score), linear between knots and constant beyond the first and last (as scikit-learn's isotonic).

    Isotonic rather than Platt scaling: it assumes only that a higher score means more fraud, so it
    corrects any monotone distortion, and it keeps the ranking (the flagged rows stay the flagged rows).
    Rather than fixed histogram bins: its steps fall where the labels change, so the rare fraud scores
    at the top get resolution instead of sharing one wide bin.
    """

    knots: np.ndarray
    """Scores, non-decreasing: the first and last score of each isotonic block."""
    values: np.ndarray
    """Fraud rate of each knot's block, non-decreasing."""

    def __post_init__(self) -> None:
        if len(self.knots) == 0 or len(self.knots) != len(self.values):
            raise ModelError("a calibration needs as many values as knots, at least one")

    def __call__(self, score: np.ndarray) -> np.ndarray:
        return np.interp(np.asarray(score, dtype=np.float64), self.knots, self.values)

    @classmethod
    def fit(cls, score: np.ndarray, y: np.ndarray) -> Calibration:
        """Pool-adjacent-violators on the rows sorted by score, rows of one score pooled first."""
        score = np.asarray(score, dtype=np.float64)
        if len(score) == 0 or len(score) != len(y):
            raise ModelError("calibration needs as many labels as scores, at least one")
        unique, group = np.unique(score, return_inverse=True)
        weight = np.bincount(group).astype(np.float64)
        rate = np.bincount(group, weights=np.asarray(y, dtype=np.float64)) / weight
        first, last, value = _pool(rate, weight)
        knots = np.stack([unique[first], unique[last]], axis=1).ravel()
        keep = np.r_[True, knots[1:] != knots[:-1]]  # one-score blocks would repeat their knot
        return cls(knots[keep], np.repeat(value, 2)[keep])

    def to_json(self) -> dict[str, list[float]]:
        return {"knots": self.knots.tolist(), "values": self.values.tolist()}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Calibration:
        return cls(np.asarray(doc["knots"], dtype=np.float64), np.asarray(doc["values"], dtype=np.float64))


def _pool(rate: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Blocks (first index, last index, weighted mean) of the isotonic fit; equal neighbours merge too."""
    means: list[float] = []
    weights: list[float] = []
    starts: list[int] = []
    for i, (r, w) in enumerate(zip(rate.tolist(), weight.tolist())):
        start = i
        while means and means[-1] >= r:
            r = (means[-1] * weights[-1] + r * w) / (weights[-1] + w)
            w += weights.pop()
            means.pop()
            start = starts.pop()
        means.append(r)
        weights.append(w)
        starts.append(start)
    first = np.asarray(starts)
    return first, np.r_[first[1:] - 1, len(rate) - 1], np.asarray(means)
