"""The one door to the statistics: a model version's reference, and a window judged against it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# The stand-in until helper drift-stats' verdict.py lands: swapping is this one import.
from kestrel.drift_monitor._verdict_standin import (
    DriftPolicy,
    FeatureResult,
    Reference,
    WindowVerdict,
    feature_kinds,
    judge_scores,
    judge_window,
)
from kestrel.model import ReferenceStats

__all__ = ["Assessment", "DriftPolicy", "ModelReference", "aligned", "assess", "feature_kinds", "reference"]


@dataclass(frozen=True)
class ModelReference:
    """What one model version is compared with: feature reference and reference scores."""

    feature_set_version: str
    features: Reference
    scores: np.ndarray


@dataclass(frozen=True)
class Assessment:
    verdict: WindowVerdict
    score: FeatureResult


def reference(stats: ReferenceStats, kinds: Sequence[str], feature_set_version: str) -> ModelReference:
    return ModelReference(feature_set_version, Reference.from_stats(stats, kinds), np.asarray(stats.sample_scores))


def assess(ref: ModelReference, current: np.ndarray, scores: np.ndarray, policy: DriftPolicy) -> Assessment:
    """`current`: float rows in the reference's feature order, NaN where a value is missing."""
    return Assessment(judge_window(ref.features, current, policy), judge_scores(ref.scores, scores, policy))


def aligned(names: Sequence[str], rows: Sequence[Sequence[float | None]], wanted: Sequence[str]) -> np.ndarray:
    """Rows over `names` as a float matrix over `wanted` (the reference's order): missing values and features NaN."""
    index = {name: j for j, name in enumerate(names)}
    out = np.full((len(rows), len(wanted)), np.nan)
    for k, name in enumerate(wanted):
        j = index.get(name)
        if j is not None:
            out[:, k] = [np.nan if row[j] is None else row[j] for row in rows]
    return out
