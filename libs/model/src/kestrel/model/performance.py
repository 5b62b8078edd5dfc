"""Reference performance of a model version on its holdout: metrics, their spread over time chunks, calibration."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kestrel.model import metrics
from kestrel.model.calibration import Calibration
from kestrel.model.errors import ModelError

CHUNKS = 10
MIN_CHUNKS = 6
"""NannyML's floor: a standard deviation over fewer reference chunks is too unsteady to draw a band with."""
BAND_SIGMAS = 3.0
BOOTSTRAPS = 100
METRICS = ("pr_auc", "roc_auc", "precision", "recall", "estimated_precision", "estimated_recall")


@dataclass(frozen=True)
class ReferencePerformance:
    """How the model performed on rows it was not trained on, as a whole and chunk by chunk in time order."""

    threshold: float
    """Decision threshold (flag when score >= threshold) of the precision and recall below."""
    overall: dict[str, float]
    """Each of METRICS on the whole holdout."""
    chunks: dict[str, tuple[float, ...]]
    """Each of METRICS per chunk (nan where a chunk cannot define it, e.g. no fraud in it)."""
    chunk_rows: tuple[int, ...]
    chunk_positives: tuple[int, ...]
    chunk_flagged: tuple[int, ...]
    """Rows at or above the threshold per chunk: precision's sample size."""
    calibration: Calibration
    resampled_sd: dict[str, float]
    """Each of METRICS' standard deviation over bootstrap samples of one chunk's size: its sampling noise."""

    def __post_init__(self) -> None:
        n = len(self.chunk_rows)
        if set(self.chunks) != set(METRICS) or any(len(v) != n for v in self.chunks.values()):
            raise ModelError(f"reference performance needs {', '.join(METRICS)} for each of {n} chunks")

    def mean(self, metric: str) -> float:
        values = self._defined(metric)
        return float(values.mean()) if len(values) else math.nan

    def sd(self, metric: str) -> float:
        """Sample standard deviation over the chunks that define the metric."""
        return _nan_sd(self.chunks[metric])

    def band(self, metric: str, widen: float = 1.0) -> tuple[float, float] | None:
        """mean -+ 3 spread (times `widen` for windows smaller than a chunk) in [0, 1]; None below MIN_CHUNKS chunks.

        The spread is the larger of the chunks' standard deviation and the bootstrap's: ten chunks give a
        standard deviation that is itself 25% uncertain, and one drawn low would make a band that raises
        false alarms on steady traffic; the bootstrap is steady but blind to change over time.
        """
        if len(self._defined(metric)) < MIN_CHUNKS:
            return None
        half = BAND_SIGMAS * max(self.sd(metric), self.resampled_sd[metric]) * widen
        return max(self.mean(metric) - half, 0.0), min(self.mean(metric) + half, 1.0)  # every metric is a share

    def _defined(self, metric: str) -> np.ndarray:
        values = np.asarray(self.chunks[metric], dtype=np.float64)
        return values[~np.isnan(values)]

    def to_json(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "overall": {k: _json_float(v) for k, v in self.overall.items()},
            "chunks": {k: [_json_float(x) for x in v] for k, v in self.chunks.items()},
            "chunk_rows": list(self.chunk_rows),
            "chunk_positives": list(self.chunk_positives),
            "chunk_flagged": list(self.chunk_flagged),
            "calibration": self.calibration.to_json(),
            "resampled_sd": {k: _json_float(v) for k, v in self.resampled_sd.items()},
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ReferencePerformance:
        return cls(
            float(doc["threshold"]),
            {k: _float(v) for k, v in doc["overall"].items()},
            {k: tuple(_float(x) for x in v) for k, v in doc["chunks"].items()},
            tuple(doc["chunk_rows"]),
            tuple(doc["chunk_positives"]),
            tuple(doc["chunk_flagged"]),
            Calibration.from_json(doc["calibration"]),
            {k: _float(v) for k, v in doc["resampled_sd"].items()},
        )


def measure(y: np.ndarray, score: np.ndarray, threshold: float, calibration: Calibration) -> dict[str, float]:
    """Each of METRICS on one set of labelled scores (the estimates use the calibration, not the labels)."""
    decision = np.asarray(score) >= threshold
    precision, recall = metrics.precision_recall(y, decision)
    estimated = metrics.expected_precision_recall(calibration(score), decision)
    return {
        "pr_auc": metrics.pr_auc(y, score),
        "roc_auc": metrics.roc_auc(y, score),
        "precision": precision,
        "recall": recall,
        "estimated_precision": estimated[0],
        "estimated_recall": estimated[1],
    }


def reference_performance(
    y: np.ndarray, score: np.ndarray, threshold: float, chunks: int = CHUNKS, seed: int = 0
) -> ReferencePerformance:
    """Calibrate on the holdout (rows in time order), then measure it whole, in `chunks` consecutive parts, and
    in BOOTSTRAPS samples (with replacement) of one part's size."""
    if chunks < MIN_CHUNKS:
        raise ModelError(f"{chunks} reference chunks: at least {MIN_CHUNKS} are needed for a band")
    y, score = np.asarray(y, dtype=bool), np.asarray(score, dtype=np.float64)
    if len(y) < chunks:
        raise ModelError(f"{len(y)} holdout rows cannot make {chunks} chunks")
    calibration = Calibration.fit(score, y)
    parts = np.array_split(np.arange(len(y)), chunks)
    per_chunk = [measure(y[rows], score[rows], threshold, calibration) for rows in parts]
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, len(y), len(parts[0])) for _ in range(BOOTSTRAPS)]
    resampled = [measure(y[rows], score[rows], threshold, calibration) for rows in draws]
    return ReferencePerformance(
        float(threshold),
        measure(y, score, threshold, calibration),
        {m: tuple(c[m] for c in per_chunk) for m in METRICS},
        tuple(len(rows) for rows in parts),
        tuple(int(y[rows].sum()) for rows in parts),
        tuple(int((score[rows] >= threshold).sum()) for rows in parts),
        calibration,
        {m: _nan_sd([r[m] for r in resampled]) for m in METRICS},
    )


def _nan_sd(values: Sequence[float]) -> float:
    defined = np.asarray(values, dtype=np.float64)
    defined = defined[~np.isnan(defined)]
    return float(defined.std(ddof=1)) if len(defined) > 1 else math.nan


def _json_float(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def _float(x: float | None) -> float:
    return math.nan if x is None else float(x)
