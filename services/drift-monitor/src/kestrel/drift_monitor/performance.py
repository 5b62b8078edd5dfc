"""Model performance in a window: measured on labelled predictions, estimated from calibrated scores before labels."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from kestrel.model import ReferencePerformance, metrics


@dataclass(frozen=True)
class PerformancePolicy:
    """Minimum evidence per window: below it a metric is null and cannot make the window "degraded"."""

    min_labels: int = 200
    """Labelled predictions needed before measured metrics are reported."""
    min_positives: int = 10
    """Fraud labels needed as well: a PR-AUC over a handful of frauds is mostly noise."""
    min_flagged: int = 10
    """Predictions at or above the threshold needed before the precision estimate is held to its band."""


@dataclass(frozen=True)
class PerformanceReport:
    """One window's performance; the field names are those of the PerformanceReport Avro record."""

    labelled: int
    positives: int
    pr_auc: float | None = None
    roc_auc: float | None = None
    precision: float | None = None
    recall: float | None = None
    estimated_precision: float | None = None
    estimated_recall: float | None = None
    reference_pr_auc: float | None = None
    band_low: float | None = None
    band_high: float | None = None
    degraded: bool = False
    threshold: float | None = None
    precision_band_low: float | None = None
    precision_band_high: float | None = None
    basis: str = "none"
    """What `degraded` was decided on: measured (PR-AUC), estimated (precision) or none (too little evidence)."""

    def to_record(self) -> dict[str, Any]:
        return asdict(self)


def assess(
    scores: np.ndarray,
    labelled_scores: np.ndarray,
    labels: np.ndarray,
    threshold: float,
    reference: ReferencePerformance | None,
    policy: PerformancePolicy = PerformancePolicy(),
) -> PerformanceReport:
    """Performance of a window: `scores` of all its predictions, and those of them labelled so far with their labels.

    Measured PR-AUC is held to the reference band when enough labels are in; until then the CBPE
    estimate of precision is held to its own band. Without a reference (an artifact older than
    reference performance) the measured metrics are still reported, with no band and no estimate.
    """
    if len(labels) != len(labelled_scores) or not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0 or 1, one per labelled score (unlabelled predictions are left out)")
    labels = np.asarray(labels, dtype=bool)
    positives = int(labels.sum())
    measured = _measured(np.asarray(labelled_scores, dtype=np.float64), labels, threshold, policy)
    estimated = _estimated(np.asarray(scores, dtype=np.float64), threshold, reference)
    flagged = int((np.asarray(scores) >= threshold).sum())
    band = _pr_auc_band(reference, positives if measured["pr_auc"] is not None else None)
    precision_band = _precision_band(reference, threshold, flagged)
    degraded, basis = _judge(measured["pr_auc"], band, estimated[0], precision_band, flagged >= policy.min_flagged)
    return PerformanceReport(
        labelled=len(labels),
        positives=positives,
        **measured,
        estimated_precision=estimated[0],
        estimated_recall=estimated[1],
        reference_pr_auc=_value(reference.overall["pr_auc"]) if reference else None,
        band_low=band[0] if band else None,
        band_high=band[1] if band else None,
        degraded=degraded,
        threshold=float(threshold),
        precision_band_low=precision_band[0] if precision_band else None,
        precision_band_high=precision_band[1] if precision_band else None,
        basis=basis,
    )


def _measured(
    scores: np.ndarray, labels: np.ndarray, threshold: float, policy: PerformancePolicy
) -> dict[str, float | None]:
    positives = int(labels.sum())
    if len(labels) < policy.min_labels or positives < policy.min_positives:
        return dict.fromkeys(("pr_auc", "roc_auc", "precision", "recall"))
    precision, recall = metrics.precision_recall(labels, scores >= threshold)
    return {
        "pr_auc": _value(metrics.pr_auc(labels, scores)),
        "roc_auc": _value(metrics.roc_auc(labels, scores)),
        "precision": _value(precision),
        "recall": _value(recall),
    }


def _estimated(
    scores: np.ndarray, threshold: float, reference: ReferencePerformance | None
) -> tuple[float | None, float | None]:
    if reference is None or len(scores) == 0:
        return None, None
    precision, recall = metrics.expected_precision_recall(reference.calibration(scores), scores >= threshold)
    return _value(precision), _value(recall)


def _pr_auc_band(reference: ReferencePerformance | None, positives: int | None) -> tuple[float, float] | None:
    """The band a window's PR-AUC is held to, widened when the window has fewer frauds than a reference chunk."""
    if reference is None:
        return None
    return reference.band("pr_auc", _widen(float(np.mean(reference.chunk_positives)), positives))


def _precision_band(
    reference: ReferencePerformance | None, threshold: float, flagged: int
) -> tuple[float, float] | None:
    """The band of the precision estimate: reference chunks estimated the same way, at the same threshold."""
    if reference is None or not math.isclose(reference.threshold, threshold):
        return None  # precision at another threshold is another metric: the reference says nothing about it
    return reference.band("estimated_precision", _widen(float(np.mean(reference.chunk_flagged)), flagged))


def _widen(chunk_count: float, window_count: int | None) -> float:
    """A metric over k cases wobbles like 1/sqrt(k): a smaller window gets a wider band, a larger one never narrower."""
    if not window_count:
        return 1.0
    return math.sqrt(max(1.0, chunk_count / window_count))


def _judge(
    pr_auc: float | None,
    band: tuple[float, float] | None,
    estimated_precision: float | None,
    precision_band: tuple[float, float] | None,
    enough_flagged: bool,
) -> tuple[bool, str]:
    """Labels, once there are enough, overrule the estimate; with neither, never degraded."""
    if pr_auc is not None and band is not None:
        return pr_auc < band[0], "measured"
    if estimated_precision is not None and precision_band is not None and enough_flagged:
        return estimated_precision < precision_band[0], "estimated"
    return False, "none"


def _value(x: float) -> float | None:
    return None if math.isnan(x) else float(x)
