"""Reference performance of a model version on its holdout: metrics, their spread over time chunks, calibration."""

from __future__ import annotations

import math
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

    def __post_init__(self) -> None:
        n = len(self.chunk_rows)
        if set(self.chunks) != set(METRICS) or any(len(v) != n for v in self.chunks.values()):
            raise ModelError(f"reference performance needs {', '.join(METRICS)} for each of {n} chunks")

    def mean(self, metric: str) -> float:
        values = self._defined(metric)
        return float(values.mean()) if len(values) else math.nan

    def sd(self, metric: str) -> float:
        """Sample standard deviation over the chunks that define the metric."""
        values = self._defined(metric)
        return float(values.std(ddof=1)) if len(values) > 1 else math.nan

    def band(self, metric: str, widen: float = 1.0) -> tuple[float, float] | None:
        """mean -+ 3 sd (times `widen`, for windows smaller than a chunk); None below MIN_CHUNKS defined chunks."""
        if len(self._defined(metric)) < MIN_CHUNKS:
            return None
        half = BAND_SIGMAS * self.sd(metric) * widen
        return self.mean(metric) - half, self.mean(metric) + half

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
    y: np.ndarray, score: np.ndarray, threshold: float, chunks: int = CHUNKS
) -> ReferencePerformance:
    """Calibrate on the holdout (rows in time order), then measure it whole and in `chunks` consecutive parts."""
    if chunks < MIN_CHUNKS:
        raise ModelError(f"{chunks} reference chunks: at least {MIN_CHUNKS} are needed for a band")
    y, score = np.asarray(y, dtype=bool), np.asarray(score, dtype=np.float64)
    if len(y) < chunks:
        raise ModelError(f"{len(y)} holdout rows cannot make {chunks} chunks")
    calibration = Calibration.fit(score, y)
    parts = np.array_split(np.arange(len(y)), chunks)
    per_chunk = [measure(y[rows], score[rows], threshold, calibration) for rows in parts]
    return ReferencePerformance(
        float(threshold),
        measure(y, score, threshold, calibration),
        {m: tuple(c[m] for c in per_chunk) for m in METRICS},
        tuple(len(rows) for rows in parts),
        tuple(int(y[rows].sum()) for rows in parts),
        tuple(int((score[rows] >= threshold).sum()) for rows in parts),
        calibration,
    )


def _json_float(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def _float(x: float | None) -> float:
    return math.nan if x is None else float(x)
