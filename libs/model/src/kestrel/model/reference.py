"""Reference statistics for drift: per-feature quantile bins and shares, a sample of rows and scores, performance."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from kestrel.model.errors import ModelError
from kestrel.model.events import EventReference
from kestrel.model.performance import ReferencePerformance

BINS = 10
SAMPLE = 10_000


@dataclass(frozen=True)
class Binning:
    """Bin k holds edges[k-1] <= x < edges[k] (bin 0 everything below edges[0], the last everything above)."""

    edges: np.ndarray
    """Interior edges, strictly increasing: deciles of the reference, duplicates merged for discrete data."""
    proportions: np.ndarray
    """Share of reference rows per bin (len(edges) + 1 values summing to 1): PSI's expected shares."""

    @classmethod
    def fit(cls, x: np.ndarray, bins: int = BINS) -> Binning:
        edges = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1]))
        return cls(edges, shares(x, edges))

    def to_json(self) -> dict[str, list[float]]:
        return {"edges": self.edges.tolist(), "proportions": self.proportions.tolist()}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Binning:
        return cls(np.asarray(doc["edges"], dtype=np.float64), np.asarray(doc["proportions"], dtype=np.float64))


def shares(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of `x` in each bin of `edges` (the same rule the reference used): for PSI on live data."""
    counts = np.bincount(np.searchsorted(edges, x, side="right"), minlength=len(edges) + 1)
    return counts / max(len(x), 1)


@dataclass(frozen=True)
class ReferenceStats:
    """What the drift monitor compares live traffic with: the training distribution, per feature and of scores."""

    feature_names: tuple[str, ...]
    features: tuple[Binning, ...]
    score: Binning
    sample: np.ndarray
    """Up to SAMPLE training rows (float32, columns in feature order) for KS tests."""
    sample_scores: np.ndarray
    """The model's scores of those rows (float32)."""
    performance: ReferencePerformance | None = None
    """Holdout performance, its spread over time chunks and the score calibration; None in artifacts made
    before it existed (the drift monitor then reports performance without a band or an estimate)."""
    events: EventReference | None = None
    """The training events' monitored columns (stored as events_reference.json); None when the training set was
    not made from events, or in artifacts made before it existed (the drift monitor then has no events reference)."""

    def __post_init__(self) -> None:
        d = len(self.feature_names)
        if len(self.features) != d or self.sample.ndim != 2 or self.sample.shape[1] != d:
            raise ModelError(f"reference statistics disagree on the feature count ({d} names)")
        if len(self.sample_scores) != len(self.sample):
            raise ModelError("reference sample and its scores differ in length")

    def to_json(self) -> dict[str, Any]:
        return {
            "feature_names": list(self.feature_names),
            "bins": BINS,
            "features": {n: b.to_json() for n, b in zip(self.feature_names, self.features)},
            "score": self.score.to_json(),
            "sample_rows": len(self.sample),
            **({"performance": self.performance.to_json()} if self.performance else {}),
        }

    @classmethod
    def from_parts(cls, doc: dict[str, Any], sample: np.ndarray, sample_scores: np.ndarray) -> ReferenceStats:
        names = tuple(doc["feature_names"])
        performance = doc.get("performance")
        return cls(
            names,
            tuple(Binning.from_json(doc["features"][n]) for n in names),
            Binning.from_json(doc["score"]),
            sample,
            sample_scores,
            ReferencePerformance.from_json(performance) if performance else None,
        )


def compute_reference(
    X: np.ndarray,
    scores: np.ndarray,
    feature_names: tuple[str, ...],
    sample_size: int = SAMPLE,
    seed: int = 0,
    performance: ReferencePerformance | None = None,
    events: EventReference | None = None,
) -> ReferenceStats:
    """Bins from every row; a seeded uniform sample (in time order) for the tests that need raw values."""
    X = np.asarray(X, dtype=np.float64)
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(X), size=min(sample_size, len(X)), replace=False))
    return ReferenceStats(
        tuple(feature_names),
        tuple(Binning.fit(X[:, j]) for j in range(X.shape[1])),
        Binning.fit(scores),
        X[rows].astype(np.float32),
        np.asarray(scores)[rows].astype(np.float32),
        performance,
        events,
    )
