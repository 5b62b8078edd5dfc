"""The one door to the statistics: a model version's reference, and a window judged against it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kestrel.drift_monitor import performance
from kestrel.drift_monitor.verdict import (
    DriftPolicy,
    FeatureResult,
    Reference,
    WindowVerdict,
    feature_kinds,
    judge_scores,
    judge_window,
)
from kestrel.model import ReferencePerformance, ReferenceStats

DEFAULT_THRESHOLD = 0.5
"""The inference service's default, for windows whose rows carry no threshold and artifacts without one."""

__all__ = ["Assessment", "DriftPolicy", "ModelReference", "Window", "aligned", "assess", "feature_kinds", "reference"]


@dataclass(frozen=True)
class ModelReference:
    """What one model version is compared with: feature reference and reference scores."""

    feature_set_version: str
    features: Reference
    scores: np.ndarray
    performance: ReferencePerformance | None = None
    """Holdout performance and calibration; None in artifacts made before it existed."""


@dataclass(frozen=True)
class Assessment:
    verdict: WindowVerdict
    score: FeatureResult
    performance: dict[str, Any] | None = None
    """The PerformanceReport record (kestrel.drift_monitor.performance)."""


@dataclass(frozen=True)
class Window:
    """One window's rows from the prediction log."""

    features: np.ndarray
    """Rows in the reference's feature order, NaN where a value is missing."""
    scores: np.ndarray
    labelled_scores: np.ndarray
    labels: np.ndarray
    threshold: float | None
    """The threshold most of its predictions were made at; None: the reference's."""


def reference(stats: ReferenceStats, kinds: Sequence[str], feature_set_version: str) -> ModelReference:
    features = Reference.from_stats(stats, kinds)
    return ModelReference(feature_set_version, features, np.asarray(stats.sample_scores), stats.performance)


def assess(ref: ModelReference, window: Window, policy: DriftPolicy) -> Assessment:
    """Feature and score drift against the reference, and performance (measured on the labels so far, estimated
    from calibrated scores before them)."""
    reference_threshold = ref.performance.threshold if ref.performance else DEFAULT_THRESHOLD
    threshold = reference_threshold if window.threshold is None else window.threshold
    found = performance.assess(window.scores, window.labelled_scores, window.labels, threshold, ref.performance)
    return Assessment(
        judge_window(ref.features, window.features, policy),
        judge_scores(ref.scores, window.scores, policy, threshold),
        found.to_record(),
    )


def aligned(names: Sequence[str], rows: Sequence[Sequence[float | None]], wanted: Sequence[str]) -> np.ndarray:
    """Rows over `names` as a float matrix over `wanted` (the reference's order): missing values and features NaN."""
    index = {name: j for j, name in enumerate(names)}
    out = np.full((len(rows), len(wanted)), np.nan)
    for k, name in enumerate(wanted):
        j = index.get(name)
        if j is not None:
            out[:, k] = [np.nan if row[j] is None else row[j] for row in rows]
    return out
